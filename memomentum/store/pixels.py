"""The pixels a store holds, and the optional image libraries that decode and encode them.

Pixels are exactly what the Clothing1M protocol feeds its network: the file opened with
Pillow, ``.convert("RGB")``, then ``resize((S, S), BILINEAR)`` ignoring the aspect ratio,
which is what torchvision's ``default_loader`` and ``transforms.Resize((S, S))`` do with PIL
images. (``Image.draft``, which lets libjpeg decode at 1/2, 1/4 or 1/8 scale, is not used:
it changes the pixels, mean absolute difference 1.2 on a 1200 x 900 photo, and for typical
500 x 375 images it cannot reduce at all.)

Decoding and encoding need Pillow and simplejpeg (``pip install "memomentum[images]"``); they
are imported when first needed, so the rest of the package works without them.
"""

from __future__ import annotations

import os

import numpy as np

from ..base.errors import InputError

_INSTALL_HINT = 'pip install "memomentum[images]"'


def import_pillow():
    """``PIL.Image``, or an InputError saying how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise InputError(f"reading image files needs Pillow, which is not installed; run: {_INSTALL_HINT}") from None
    return Image


def import_simplejpeg():
    """The ``simplejpeg`` module, or an InputError saying how to install it."""
    try:
        import simplejpeg
    except ImportError:
        raise InputError(
            f"the packed image store needs simplejpeg, which is not installed; run: {_INSTALL_HINT}"
        ) from None
    return simplejpeg


def decode_resized(path: str, image_size: int, Image) -> tuple[np.ndarray, os.stat_result]:
    """The file's pixels as the protocol sees them, uint8 (S, S, 3), and its stat at the
    time it was read: Pillow's ``open``, ``convert("RGB")`` (torchvision's
    ``default_loader``), then ``resize((S, S), BILINEAR)`` (torchvision's ``Resize((S, S))``
    on PIL images, which ignores the aspect ratio)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        with Image.open(f) as im:
            rgb = im.convert("RGB")
    return np.asarray(rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)), st


def error_reason(e: BaseException) -> str:
    if type(e).__name__ == "UnidentifiedImageError":  # Pillow's text only repeats the file object
        return "not an image format Pillow reads"
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
