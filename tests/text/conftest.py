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


def copy_keys(copy) -> dict:
    """The Transformer's `model:` keys for a test's `copy` parameter: False,
    True (a copy attention of its own) or "cross" (its last decoder layer's
    first cross-attention head)."""
    return {"copy": bool(copy), "copy_attention": "cross" if copy == "cross" else "own"}
