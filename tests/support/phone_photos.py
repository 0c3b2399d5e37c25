"""Photos stored the way phone cameras store them: the sensor's pixels plus an EXIF Orientation
tag saying how to turn them upright. The table comes from the tag's definition (EXIF 2.32: where
row 0 and column 0 of the stored image lie on the displayed one), written with numpy, so it is
independent of the Pillow transposes the gateway and the model tooling use."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

ORIENTATION_TAG = 0x0112
STORED_AS = {
    1: lambda up: up,
    2: lambda up: up[:, ::-1],  # mirrored left-right
    3: lambda up: up[::-1, ::-1],  # rotated 180 degrees
    4: lambda up: up[::-1, :],  # mirrored top-bottom
    5: lambda up: up.transpose(1, 0, 2),  # mirrored across the main diagonal
    6: lambda up: np.rot90(up, k=1),  # shown turned 90 degrees clockwise
    7: lambda up: np.rot90(up, k=2).transpose(1, 0, 2),  # mirrored across the anti-diagonal
    8: lambda up: np.rot90(up, k=-1),  # shown turned 90 degrees anticlockwise
}


def phone_photo(upright: np.ndarray, orientation: int, quality: int = 95) -> bytes:
    """A JPEG storing the upright RGB pixels as a camera would with this EXIF Orientation."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(STORED_AS[orientation](upright))).save(
        buffer, format="JPEG", quality=quality, exif=exif.tobytes()
    )
    return buffer.getvalue()


def upright_pixels(path, size: tuple[int, int] = (1500, 2000)) -> np.ndarray:
    """A photo file at phone-like size (so the JPEG draft path runs), as RGB pixels."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.BILINEAR))
