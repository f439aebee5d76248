import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")


FIXTURES = Path(__file__).resolve().parent / "fixtures"  # in the repository (fixtures/README.md)


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """A run in the test's process sets torch's thread count (a run's results depend on it):
    every test starts from the same count."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def skip_or_fail(reason: str):
    """Missing external data skips a test on a developer's machine but fails in CI, where
    .ci/run installs it: a skipped proof is no proof."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def fixture_dir(sub: str = "") -> Path:
    """A folder of the repository's test fixtures (``tests/fixtures/SUB``), or
    ``$MEMOMENTUM_FIXTURES/SUB`` when that variable is set."""
    base = Path(os.environ["MEMOMENTUM_FIXTURES"]) if os.environ.get("MEMOMENTUM_FIXTURES") else FIXTURES
    return base / sub if sub else base


def fixture_file(name: str):
    """A reference fixture recorded from the reference implementation (``tests/fixtures``)."""
    path = fixture_dir() / name
    if not path.is_file():
        skip_or_fail(f"reference fixture {name} not found in {fixture_dir()}")
    return np.load(path)


def require_fashion_mnist() -> Path:
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        skip_or_fail(f"Fashion-MNIST is not installed at {FASHION} (Debian package dataset-fashion-mnist)")
    return FASHION
