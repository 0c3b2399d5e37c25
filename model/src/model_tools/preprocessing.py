"""Image -> model input, exactly as serving does it (numpy + Pillow only, no TensorFlow).

The contract (ARCHITECTURE.md): for JPEG ``Image.draft`` (as the gateway does), PIL RGB
conversion, resize to the model's (W, H) with ``Image.NEAREST`` -- what keras-image-helper and
Keras ``load_img`` do -- then a scaling family. Training uses these functions so the demo model
sees the same pixels the gateway sends; tests/test_train_serve_parity.py holds the two together.
"""

from __future__ import annotations

import pathlib

import numpy as np

# Scaling families, as in keras.applications.<family>.preprocess_input ("mode" in Keras terms).
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

FAMILIES = ("xception", "inception_v3", "resnet50", "vgg16")


def scale(pixels: np.ndarray, family: str = "xception") -> np.ndarray:
    """Raw RGB pixels (any numeric dtype, last axis = 3) -> float32 model input."""
    x = np.asarray(pixels, dtype=np.float32)
    if family in ("xception", "inception_v3"):  # "tf" mode: [-1, 1]
        return x / 127.5 - 1.0
    if family in ("resnet50", "vgg16"):  # "caffe" mode: RGB->BGR, minus ImageNet mean
        return x[..., ::-1] - _CAFFE_MEAN_BGR
    raise ValueError(f"unknown preprocessing family {family!r}; choose one of {', '.join(FAMILIES)}")


def load_pixels(path: str | pathlib.Path, size: tuple[int, int]) -> np.ndarray:
    """JPEG/PNG file -> uint8 array [H, W, 3]; ``size`` is (W, H) as PIL takes it."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        sideways = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF Orientation swaps W and H
        if img.format == "JPEG":
            # The gateway lets libjpeg decode JPEGs at reduced scale (DCT scaling) before the
            # resize; do the same so training and evaluation see the pixels serving sends
            # (the target in the stored orientation, as the gateway asks for it).
            img.draft("RGB", size[::-1] if sideways else size)
        # Phone photos stored sideways are turned upright first, as the gateway does.
        img = ImageOps.exif_transpose(img).convert("RGB")
        img = img.resize(size, Image.NEAREST)
        return np.asarray(img, dtype=np.uint8)


def class_folders(root: str | pathlib.Path) -> list[str]:
    """Class names of a directory of class folders, sorted (the output index order)."""
    root = pathlib.Path(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_split(root: str | pathlib.Path, classes: list[str], size: tuple[int, int]):
    """All images under ``root/<class>/`` -> (uint8 [N, H, W, 3], int labels [N], file paths)."""
    root = pathlib.Path(root)
    images, labels, paths = [], [], []
    for index, name in enumerate(classes):
        for path in sorted((root / name).glob("*")):
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            images.append(load_pixels(path, size))
            labels.append(index)
            paths.append(path)
    if not images:
        raise ValueError(f"no images found under {root}")
    return np.stack(images), np.array(labels, dtype=np.int64), paths
