import io

import numpy as np
import pytest
from keras_image_helper.preprocessors import caffe_preprocessing, tf_preprocessing
from PIL import Image

from gateway.errors import GatewayError
from gateway.imaging import decode_resized, sniff_format, to_model_input


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def gradient(width=640, height=480, mode="RGB") -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1)).convert(mode)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "WEBP", "AVIF"])
def test_accepted_formats_decode_to_rgb_at_the_model_size(fmt):
    data = encode(gradient(), fmt)
    assert sniff_format(data) == fmt
    array = decode_resized(data, 299, 199, max_pixels=10**7)
    assert array.shape == (199, 299, 3) and array.dtype == np.uint8


@pytest.mark.parametrize("data", [b"<html>", b"%PDF-1.7", b"\x00\x00\x00 ftypheic", b"", b"GIF8"])
def test_non_images_are_refused_by_their_bytes(data):
    with pytest.raises(GatewayError) as caught:
        decode_resized(data, 10, 10, 10**6)
    assert (caught.value.status, caught.value.code) == (415, "unsupported_image")


@pytest.mark.parametrize(
    "major, compatible", [(b"heic", [b"mif1", b"heic"]), (b"mif1", [b"heic"]), (b"heix", [b"mif1"])]
)
def test_heic_photos_get_a_415_that_names_what_to_send(major, compatible):
    """An iPhone's HEIC (the ISO-BMFF ftyp box as it writes it) is named, with the formats that
    work and the phone setting that sends one."""
    box = b"ftyp" + major + b"\x00\x00\x00\x00" + b"".join(compatible)
    data = (len(box) + 4).to_bytes(4, "big") + box + b"\x00" * 64
    with pytest.raises(GatewayError) as caught:
        decode_resized(data, 10, 10, 10**6)
    assert (caught.value.status, caught.value.code) == (415, "unsupported_image")
    assert "HEIC/HEIF images are not supported" in caught.value.message
    for name in ("JPEG", "PNG", "WebP", "AVIF"):
        assert name in caught.value.message


def test_small_jpeg_matches_keras_style_nearest_resize(sample_jpeg):
    # Training (keras load_img / keras-image-helper) resizes with NEAREST after RGB conversion.
    expected = np.asarray(
        Image.open(io.BytesIO(sample_jpeg)).convert("RGB").resize((150, 150), Image.NEAREST)
    )
    full_scale_needed = decode_resized(sample_jpeg, 299, 299, 10**7)  # 400x534 source: no draft reduction
    reference = np.asarray(
        Image.open(io.BytesIO(sample_jpeg)).convert("RGB").resize((299, 299), Image.NEAREST)
    )
    np.testing.assert_array_equal(full_scale_needed, reference)
    assert expected.shape == (150, 150, 3)


def test_large_jpeg_is_decoded_at_reduced_scale_and_stays_close():
    photo = encode(gradient(4032, 3024), "JPEG", quality=90)
    fast = decode_resized(photo, 299, 299, 10**8)
    slow = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB").resize((299, 299), Image.NEAREST))
    # DCT scaling averages blocks instead of picking pixels: close, not identical, on a gradient.
    assert np.abs(fast.astype(int) - slow.astype(int)).mean() < 3
    probe = Image.open(io.BytesIO(photo))
    probe.draft("RGB", (299, 299))
    assert probe.size == (504, 378)  # libjpeg decodes at 1/8 scale, never below the target


def test_alpha_palette_and_grayscale_become_rgb():
    for mode in ("RGBA", "P", "L", "LA", "CMYK"):
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        assert decode_resized(encode(gradient(64, 48, mode), fmt), 32, 32, 10**6).shape == (32, 32, 3)


def test_truncated_jpeg_is_unprocessable(sample_jpeg):
    with pytest.raises(GatewayError) as caught:
        decode_resized(sample_jpeg[: len(sample_jpeg) // 2], 299, 299, 10**7)
    assert (caught.value.status, caught.value.code) == (422, "invalid_image")


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (5000, 5000)), "PNG")
    assert len(bomb) < 50_000
    with pytest.raises(GatewayError) as caught:
        decode_resized(bomb, 299, 299, max_pixels=20_000_000)
    assert (caught.value.status, caught.value.code) == (413, "image_too_many_pixels")
    assert "5000x5000" in caught.value.message
    assert decode_resized(bomb, 10, 10, max_pixels=25_000_000).shape == (10, 10, 3)


@pytest.mark.parametrize(
    "family,reference",
    [
        ("xception", tf_preprocessing),
        ("inception_v3", tf_preprocessing),
        ("resnet50", caffe_preprocessing),
        ("vgg16", caffe_preprocessing),
    ],
)
def test_float_scaling_matches_keras_image_helper(family, reference):
    rgb = np.asarray(gradient(8, 6))
    ours = to_model_input(rgb, "float32", family)
    theirs = reference(rgb[np.newaxis].astype("float32"))
    assert ours.dtype == np.float32 and ours.shape == (1, 6, 8, 3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-5)


def test_uint8_models_get_raw_pixels_whatever_the_family():
    rgb = np.asarray(gradient(8, 6))
    for family in ("xception", "resnet50"):
        out = to_model_input(rgb, "uint8", family)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out[0], rgb)


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("PNG", "1"),
        ("PNG", "L"),
        ("PNG", "LA"),
        ("PNG", "P"),
        ("PNG", "RGBA"),
        ("PNG", "I;16"),
        ("JPEG", "L"),
        ("JPEG", "CMYK"),
        ("GIF", "P"),
        ("BMP", "P"),
        ("WEBP", "RGBA"),
    ],
)
@pytest.mark.parametrize("size", [(40, 30), (299, 299)])
def test_every_decoded_mode_gives_the_pixels_of_converting_first(fmt, mode, size):
    """decode_resized converts to RGB after the NEAREST resize (so a big palette or RGBA image is
    never held twice at full size); the pixels are those of Keras' order, convert then resize."""
    noise = np.random.default_rng(7).integers(0, 256, (97, 131, 4), dtype=np.uint8)
    image = Image.fromarray(noise[..., :3], "RGB")
    image = image.convert("L").convert("I;16") if mode == "I;16" else image.convert(mode)
    if mode in ("LA", "RGBA"):
        image.putalpha(Image.fromarray(noise[..., 3], "L"))  # an alpha the encoders keep
    data = encode(image, fmt)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.mode != "RGB"  # the case under test: a conversion is needed
        if fmt == "JPEG":
            decoded.draft("RGB", size)  # the same DCT scale as the gateway's
        expected = np.asarray(decoded.convert("RGB").resize(size, Image.NEAREST))
    assert np.array_equal(decode_resized(data, *size, max_pixels=10**6), expected)


_PEAK_SCRIPT = """
import pathlib, sys
from gateway.imaging import decode_resized
def kib(field):  # VmHWM: this process's peak (ru_maxrss would carry the forking parent's over exec)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))
data = pathlib.Path(sys.argv[1]).read_bytes()
before = kib("VmRSS:")
decode_resized(data, 299, 299, 10**8)
print((kib("VmHWM:") - before) // 1024)
"""


def test_a_big_rgba_png_is_held_once_at_full_size(tmp_path):
    """25 megapixels of RGBA are 100 MB in Pillow; converting before resizing held a second
    full-size copy (RGB is 4 bytes a pixel in Pillow too): ~200 MB."""
    import subprocess
    import sys

    png = tmp_path / "big.png"
    Image.new("RGBA", (5000, 5000), (200, 30, 40, 128)).save(png)
    # A process of its own, whose peak memory is this decode's.
    peak_mib = int(
        subprocess.run(
            [sys.executable, "-c", _PEAK_SCRIPT, str(png)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    assert 90 <= peak_mib < 150, peak_mib
