"""The two image cases the benchmark serves: a dataset JPEG and a phone-size photo.

The phone photo is made from the dataset image, deterministically, so anyone can regenerate the
exact same bytes (same Pillow/libjpeg) instead of downloading or committing a 2 MB file.
"""

from __future__ import annotations

import io
import pathlib
import shutil

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parent.parent
# 400x533, ~25 KB: the size and weight of a typical clothing-dataset-small test image.
DATASET_IMAGE = REPO / "samples" / "images" / "t-shirt.jpg"

PHONE_SIZE = (4032, 3024)  # a 12 MP phone camera, landscape
PHONE_QUALITY = 90
# Upscaling alone gives a smooth picture that compresses to a fraction of a real photo; seeded
# sensor-like noise restores a realistic ~2 MB of entropy-coded data (decode cost scales with it).
PHONE_NOISE_SIGMA = 4.0
PHONE_SEED = 20260601

CASES = ("dataset", "phone")


def make_phone_photo(source: pathlib.Path = DATASET_IMAGE) -> bytes:
    """Return a 4032x3024 JPEG (~2 MB) derived from `source`; same input -> same bytes."""
    with Image.open(source) as img:
        portrait = img.convert("RGB")
    # The dataset images are portrait (3:4); turn to landscape so the 4:3 resize keeps proportions.
    landscape = portrait.transpose(Image.Transpose.ROTATE_90)
    pixels = np.asarray(landscape.resize(PHONE_SIZE, Image.BICUBIC), dtype=np.float32)
    rng = np.random.default_rng(PHONE_SEED)
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(PHONE_NOISE_SIGMA)
    pixels = np.clip(np.rint(pixels, out=pixels), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=PHONE_QUALITY)
    return out.getvalue()


def write_cases(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """Write dataset.jpg and phone.jpg into `directory`; return {case: path}."""
    directory.mkdir(parents=True, exist_ok=True)
    dataset = directory / "dataset.jpg"
    shutil.copyfile(DATASET_IMAGE, dataset)
    phone = directory / "phone.jpg"
    phone.write_bytes(make_phone_photo())
    return {"dataset": dataset, "phone": phone}
