import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread avoids OpenMP spin-waits on a shared CPU (up to 100x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
