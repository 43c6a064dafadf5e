"""Fixtures shared by the text tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread, and the CI machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
