"""Image bytes -> the model's input array: sniff, decode (JPEG at reduced scale), resize, scale.

Resize matches training: RGB conversion and PIL NEAREST to the model's (W, H), which is what
Keras `load_img` and keras-image-helper do (they convert first; NEAREST and a per-pixel
conversion give the same pixels in either order, and converting the small image saves memory).
For JPEG, `Image.draft` first lets libjpeg decode at 1/2, 1/4 or 1/8 scale (DCT scaling) while
staying at least the target size, so a 12-megapixel phone photo is never decoded at full size.

Phone photos: most store the sensor's pixels sideways with an EXIF Orientation tag. The tag is
read from the header, the JPEG draft is asked for the target size in the stored orientation, and
the (already reduced) image is transposed upright before the resize: the model sees the photo as
its owner does, at no cost beyond a transpose of the small image.

Decompression bombs: the pixel count in the header is checked against `max_image_pixels` right
after `Image.open` (which parses only the header) and before any pixel is decoded; Pillow's own
global guard is set to the same limit as a backstop.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from gateway.errors import GatewayError

# Magic numbers of the formats we accept; anything else is refused before Pillow sees it
# (Pillow would otherwise try every plugin it has, including exotic ones).
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
# AVIF (Pillow decodes it natively) and HEIF/HEIC (the iPhone's default) are ISO base media files:
# an `ftyp` box whose brands name the format. HEIC is refused: the maintained decoder wheel
# (pillow-heif) brings libheif linked to the x265 encoder, +27 MB that would take the gateway
# image past its 150 MB budget for a format phones can be set not to send.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "AVIF")
_NAMES = {"WEBP": "WebP"}
SUPPORTED = ", ".join(_NAMES.get(f, f) for f in ACCEPTED_FORMATS[:-1]) + f" or {ACCEPTED_FORMATS[-1]}"

# EXIF Orientation (tag 0x0112) -> the transpose that makes the stored pixels upright (EXIF 2.32,
# the same table as PIL.ImageOps.exif_transpose). 5-8 swap width and height.
_ORIENTATION = 0x0112
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Per-family scaling of float32 inputs, as keras-image-helper / keras.applications do it.
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def configure_pillow(max_image_pixels: int) -> None:
    """Set Pillow's process-wide decompression-bomb limit (called by create_app, not on import).
    Between 1x and 2x the limit Pillow only warns; decode_resized's own check is the real limit,
    so the warning is silenced here, once, for the process (`warnings.catch_warnings` around
    each decode is neither thread-safe nor free)."""
    Image.MAX_IMAGE_PIXELS = max_image_pixels
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def sniff_format(data: bytes) -> str:
    """Name the image format from its first bytes; raise 415 for anything else."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    brands = _ftyp_brands(data)
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIF_BRANDS:
        raise GatewayError(
            415,
            "unsupported_image",
            f"HEIC/HEIF images are not supported: send {SUPPORTED} (an iPhone sends JPEG with "
            "Settings > Camera > Formats > Most Compatible)",
        )
    raise GatewayError(415, "unsupported_image", f"the content is not a {SUPPORTED} image")


def _ftyp_brands(data: bytes) -> set[bytes]:
    """Major and compatible brands of a leading ISO-BMFF `ftyp` box (empty if there is none)."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return set()
    size = min(int.from_bytes(data[:4], "big"), len(data), 4096)
    return {data[8:12]} | {data[i : i + 4] for i in range(16, size - 3, 4)}


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Sniff `data` and parse its header, decoding no pixel: 415 for a format not accepted, 413
    for more than `max_pixels` pixels, 422 for a header Pillow cannot read. The image it returns
    is decoded once, by `resize_opened`."""
    fmt = sniff_format(data)
    with _decode_errors(fmt, max_pixels):
        image = Image.open(io.BytesIO(data), formats=[fmt])
        if image.width * image.height > max_pixels:
            raise _too_many_pixels(image.width, image.height, max_pixels)
        return image


def decode_resized(
    data: bytes, width: int, height: int, max_pixels: int, budget: PixelBudget | None = None
) -> np.ndarray:
    """Decode `data` and return an RGB uint8 array of shape (height, width, 3). With a `budget`,
    the decode first waits until the pixels it is about to decode fit in it."""
    return resize_opened(open_image(data, max_pixels), width, height, max_pixels, budget)


def resize_opened(
    image: Image.Image, width: int, height: int, max_pixels: int, budget: PixelBudget | None = None
) -> np.ndarray:
    """`decode_resized` for an image `open_image` returned (which this consumes)."""
    fmt = image.format
    with _decode_errors(fmt, max_pixels), contextlib.ExitStack() as held:
        if budget and fmt != "JPEG":
            # Before the EXIF read: PNG's may sit after the pixels, and Pillow decodes them all
            # to reach it.
            held.enter_context(budget.hold(image.width * image.height))
        upright = _UPRIGHT.get(_orientation(image))
        if fmt == "JPEG":
            # The target in the stored orientation: a sideways photo is decoded at the same
            # scale as the same photo stored upright.
            image.draft("RGB", (height, width) if upright in _SWAPS else (width, height))
            if budget:  # what libjpeg will really produce: a phone photo's 1/8 scale
                held.enter_context(budget.hold(image.width * image.height))
        if upright is not None:
            image = image.transpose(upright)
        if image.size != (width, height):
            image = image.resize((width, height), Image.NEAREST)
        else:
            image.load()
        # Converted last, at the model's size: NEAREST picks pixels and conversion maps each
        # pixel alone, so the result is the same in either order (gateway/tests check every
        # mode), but a 50-megapixel palette or RGBA PNG is never held twice at full size.
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image, dtype=np.uint8)


@contextlib.contextmanager
def _decode_errors(fmt: str, max_pixels: int):
    """Pillow's errors on a broken or oversized image, as the gateway's JSON errors."""
    try:
        yield
    except GatewayError:
        raise
    except Image.DecompressionBombError:
        raise _too_many_pixels(None, None, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        # OSError covers "image file is truncated" and broken streams.
        raise GatewayError(422, "invalid_image", f"the {fmt} image cannot be decoded: {error}") from None


_SWAPS = {
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
}


class PixelBudget:
    """Pixels being decoded at once, across threads, granted in arrival order.

    Decoding holds the whole image in memory (Pillow keeps about 4 bytes a pixel, RGB or RGBA):
    a 7000x7000 PNG of 160 KB takes ~190 MB, so THREADS of them at once would
    take a pod far past its memory limit. A decode holds its pixel count from before the first
    pixel is decoded until the resized array exists; one that does not fit waits, and so does
    everyone behind it (no large image starves behind a stream of small ones). A count above the
    limit is held as the whole limit: it decodes alone.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.held = 0
        self._ready = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    @contextlib.contextmanager
    def hold(self, pixels: int):
        pixels = min(pixels, self.limit)
        with self._ready:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._ready.wait_for(lambda: self._serving == ticket and self.held + pixels <= self.limit)
            self.held += pixels
            self._serving += 1
            self._ready.notify_all()
        try:
            yield
        finally:
            with self._ready:
                self.held -= pixels
                self._ready.notify_all()


def _orientation(image: Image.Image) -> int:
    """The EXIF Orientation of an opened (not yet decoded) image; 1 (upright) when absent or
    unreadable: a broken EXIF block must not cost the user the prediction."""
    try:
        value = image.getexif().get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises assorted errors on junk
        return 1
    return value if isinstance(value, int) else 1


def _too_many_pixels(width, height, limit) -> GatewayError:
    size = f"{width}x{height} " if width else ""
    return GatewayError(
        413, "image_too_many_pixels", f"the image {size}has more than {limit} pixels (MAX_IMAGE_PIXELS)"
    )


def to_model_input(rgb: np.ndarray, input_dtype: str, family: str) -> np.ndarray:
    """Batch of one in the model's input dtype: uint8 as-is, float32 scaled per `family`."""
    batch = rgb[np.newaxis]
    if input_dtype == "uint8":
        return batch
    x = batch.astype(np.float32)
    if family in ("xception", "inception_v3"):
        x /= 127.5
        x -= 1.0
        return x
    # resnet50 / vgg16: "caffe" mode, RGB -> BGR then subtract the ImageNet mean per channel.
    x = x[..., ::-1]
    x -= _CAFFE_MEAN_BGR
    return np.ascontiguousarray(x)
