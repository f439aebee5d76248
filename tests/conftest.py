"""pytest's fixtures for every test file. The functions several test files share (the
checkout, data on this machine, fast schedules, the command line, small problems) are in
``helpers.py``."""

import pytest


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """A run in the test's process sets torch's thread count (a run's results depend on it):
    every test starts from the same count."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
