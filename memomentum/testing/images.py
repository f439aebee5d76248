"""What every fixture writer shares: an image of a class (a pattern a small CNN learns in a few
epochs), saved as JPEG or PNG; symmetric label noise; text files written whole.

Images get a learnable pattern per class (a colour and a stripe orientation and period,
plus pixel noise and a random phase), so a small CNN separates the classes in a few
epochs. Everything is drawn from the ``numpy.random.Generator`` the writer passes in (each
writer makes one with ``numpy.random.default_rng(seed)``). Writing JPEG and PNG files needs
Pillow (the readers do not).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..base.atomic import atomic_file
from ..base.errors import InputError

# Stripe orientations (row and column weights of the stripe phase) cycled over classes.
_ORIENTATIONS = ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, -1.0))


def _class_colours(k: int) -> np.ndarray:
    """(k, 3) float RGB colours on the 0..255 scale, evenly spaced hues, alternating
    between two brightness levels so neighbouring hues differ in brightness too."""
    rgb = [colorsys.hsv_to_rgb(c / k, 0.75, 0.95 if c % 2 == 0 else 0.6) for c in range(k)]
    return np.array(rgb, dtype=np.float64) * 255.0


def class_image(label: int, num_classes: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One (H, W, 3) uint8 image of class ``label``: the class colour modulated by
    stripes of the class's orientation and period, with a random phase, a random
    brightness and Gaussian pixel noise.

    Args:
        label: the class, 0..num_classes-1.
        num_classes: how many classes share the colour wheel.
        size: (width, height), as Pillow gives sizes.
        rng: the source of randomness.
    """
    width, height = size
    colour = _class_colours(num_classes)[label]
    dy, dx = _ORIENTATIONS[label % len(_ORIENTATIONS)]
    period = 6.0 + 2.0 * (label % 3)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = rng.uniform(0, 2 * np.pi)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (dy * rows + dx * cols) / period + phase)
    brightness = rng.uniform(0.8, 1.1)
    img = colour * (0.45 + 0.55 * stripes[..., None]) * brightness
    img += rng.normal(0.0, 12.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def save_image(img: np.ndarray, path: Path, fmt: str) -> None:
    """Write ``img`` as JPEG (quality 90) or PNG."""
    from PIL import Image  # only the writers need Pillow

    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png":
        Image.fromarray(img).save(path, format="PNG")
    else:
        Image.fromarray(img).save(path, format="JPEG", quality=90)


def check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in size):
        raise InputError(f"size must be (width, height) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def flip_labels(labels: np.ndarray, noise: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Symmetric label noise: each label is replaced, with probability ``noise``, by a
    uniformly drawn *different* class."""
    flip = rng.random(len(labels)) < noise
    other = (labels + rng.integers(1, num_classes, len(labels))) % num_classes
    return np.where(flip, other, labels).astype(np.int64)


def write_lines(path: Path, lines: Sequence[str]) -> None:
    """Write ``lines`` (newline-terminated) in one go, atomically: a file interrupted
    halfway never looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        f.write("\n".join(lines))
        f.write("\n")
