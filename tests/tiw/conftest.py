import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests run tiny tensors, where a second thread only adds synchronisation (and, on a loaded
    machine, spin-waiting that made them 10-30x slower). Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
