import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Video tests are small; on a shared 2-core machine a second intra-op
    thread only adds contention (measured 10-50x slower under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
