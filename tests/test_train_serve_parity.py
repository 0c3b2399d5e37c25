"""Training (model_tools.preprocessing) and serving (gateway.imaging) must feed the model the
same input for the same file. They are two small implementations on purpose — the model
tooling does not depend on the gateway package — so this test holds them together: a skew
between them once flipped the demo image's class (full-size decode in training, DCT-scaled
decode in the gateway)."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from gateway.imaging import decode_resized, to_model_input
from model_tools.preprocessing import load_pixels, scale
from support.phone_photos import phone_photo, upright_pixels

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples" / "images").glob("*.jpg"))
SIZES = [(128, 128), (299, 299), (96, 160)]  # the demo model's, the lesson's, a non-square one


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_training_and_gateway_decode_a_jpeg_to_the_same_pixels(path, size):
    width, height = size
    served = decode_resized(path.read_bytes(), width, height, max_pixels=10**8)
    trained = load_pixels(path, size)
    assert served.shape == trained.shape == (height, width, 3)
    np.testing.assert_array_equal(served, trained)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_training_and_gateway_decode_a_png_to_the_same_pixels(tmp_path, size):
    png = tmp_path / "sample.png"
    with Image.open(SAMPLES[0]) as image:
        image.save(png, format="PNG")
    served = decode_resized(png.read_bytes(), *size, max_pixels=10**8)
    np.testing.assert_array_equal(served, load_pixels(png, size))


def test_a_large_photo_takes_the_reduced_scale_path_in_both(tmp_path):
    """A 1600x1200 JPEG is DCT-scaled for a 128x128 model; both sides must do it alike."""
    with Image.open(SAMPLES[0]) as image:
        big = image.convert("RGB").resize((1600, 1200), Image.BILINEAR)
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((128, 128), Image.NEAREST))
    served = decode_resized(data, 128, 128, max_pixels=10**8)
    assert not np.array_equal(served, full), "the gateway should not decode this photo at full size"
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    np.testing.assert_array_equal(served, load_pixels(path, (128, 128)))


@pytest.mark.parametrize("family", ["xception", "inception_v3", "resnet50", "vgg16"])
def test_training_and_gateway_scale_float32_inputs_alike(family):
    pixels = load_pixels(SAMPLES[0], (128, 128))
    served = to_model_input(pixels, "float32", family)[0]
    np.testing.assert_allclose(served, scale(pixels, family), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def upright_photo() -> np.ndarray:
    """A dataset photo at phone-like size (portrait 1500x2000), so the JPEG draft path runs."""
    return upright_pixels(SAMPLES[0])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_phone_photos_reach_the_model_upright_in_training_and_serving(upright_photo, orientation, tmp_path):
    """The same photo stored upright and stored with each EXIF orientation gives the same model
    input (within JPEG noise) in the gateway, and training reads it the same way."""
    size = (128, 128)
    upright = decode_resized(phone_photo(upright_photo, 1), *size, max_pixels=10**8).astype(int)
    data = phone_photo(upright_photo, orientation)
    served = decode_resized(data, *size, max_pixels=10**8)
    # Within JPEG noise and NEAREST sampling of a mirrored grid (about 4 of 255 here; the same
    # photo read sideways differs by 30 to 60).
    assert np.abs(served.astype(int) - upright).mean() < 6
    if orientation != 1:
        # Without the tag the stored pixels are another picture altogether.
        ignored = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize(size, Image.NEAREST)).astype(
            int
        )
        assert np.abs(ignored - upright).mean() > 15
    path = tmp_path / "phone.jpg"
    path.write_bytes(data)
    np.testing.assert_array_equal(served, load_pixels(path, size))
