"""memomentum: Me-Momentum (Bai & Liu, ICCV 2021) for learning with noisy labels."""
from .config import RunConfig
from .errors import InputError

__version__ = "0.1.0"


def run(config: RunConfig, **kwargs):
    """Run the whole pipeline; see :func:`memomentum.api.run`."""
    from .api import run as _run
    return _run(config, **kwargs)


__all__ = ["RunConfig", "InputError", "run", "__version__"]
