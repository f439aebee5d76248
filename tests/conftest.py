import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")


def skip_or_fail(reason: str):
    """Missing external data skips a test on a developer's machine but fails in CI, where
    .ci/run installs it and shared/ lies beside the clone: a skipped proof is no proof."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def shared_dirs(sub: str) -> list[Path]:
    """Where the project's shared/ folder may hold ``sub``: beside the checkout (as in CI),
    then the developers' usual place."""
    return [REPO.parent / "shared" / sub, Path("/work/shared") / sub]


def shared_dir(sub: str) -> Path:
    """The first existing shared/``sub`` folder, or the first candidate if none exists."""
    return next((d for d in shared_dirs(sub) if d.is_dir()), shared_dirs(sub)[0])


def fixture_file(name: str):
    """A reference fixture: $MEMOMENTUM_FIXTURES, then shared/fixtures."""
    candidates = [Path(os.environ["MEMOMENTUM_FIXTURES"])] if os.environ.get("MEMOMENTUM_FIXTURES") else []
    candidates += shared_dirs("fixtures")
    for directory in candidates:
        if (directory / name).is_file():
            return np.load(directory / name)
    skip_or_fail(f"reference fixture {name} not found in {', '.join(map(str, candidates))}")


def require_fashion_mnist() -> Path:
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        skip_or_fail(f"Fashion-MNIST is not installed at {FASHION} (Debian package dataset-fashion-mnist)")
    return FASHION
