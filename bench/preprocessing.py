"""Figure 1: preprocessing + request serialization per image, in-process, next to the decode floor.

Each pipeline turns the same JPEG bytes into the serialized PredictRequest its gateway would send:
- baseline: keras-image-helper's `convert_to_tensor` on the opened image (its `from_url` minus the
  download) and the lesson's hand-built float32 TensorProto;
- ours: the gateway's own `decode_resized` -> `to_model_input` -> `encode_predict_request`, the
  calls `Classifier` and `ModelClient.predict` make, for the default uint8 signature and for a
  float32 one like the lesson's;
- floor: decoding the JPEG alone, at full size and DCT-scaled (`draft`) to at least 299x299.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable

from PIL import Image

from bench.backend import IMAGE_SIZE, INPUT_NAME, MODEL_NAME, OUTPUT_NAME, SIGNATURE_NAME
from gateway.settings import Settings

MAX_PIXELS = Settings.max_image_pixels  # the gateway's default MAX_IMAGE_PIXELS


def decode_full(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def decode_dct_scaled(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (IMAGE_SIZE, IMAGE_SIZE))
        image.load()


def baseline_request(data: bytes) -> bytes:
    from bench.baseline import gateway as lesson

    X = lesson.preprocessor.convert_to_tensor(Image.open(io.BytesIO(data)))
    return lesson.prepare_request(X).SerializeToString()


def ours_request(data: bytes, input_dtype: str = "uint8") -> bytes:
    from gateway.imaging import decode_resized, to_model_input
    from gateway.tensors import encode_predict_request

    rgb = decode_resized(data, IMAGE_SIZE, IMAGE_SIZE, MAX_PIXELS)
    batch = to_model_input(rgb, input_dtype, "xception")
    return encode_predict_request(MODEL_NAME, SIGNATURE_NAME, INPUT_NAME, batch, [OUTPUT_NAME])


def ours_float32_request(data: bytes) -> bytes:
    return ours_request(data, "float32")


PIPELINES: dict[str, Callable[[bytes], object]] = {
    "baseline": baseline_request,
    "ours": ours_request,
    "ours (float32 signature)": ours_float32_request,
    "floor: JPEG decode, full size": decode_full,
    "floor: JPEG decode, DCT-scaled": decode_dct_scaled,
}


def measure(images: dict[str, bytes], reps: int, iterations: dict[str, int]) -> dict:
    """{case: {pipeline: {"median_ms", "samples_ms"}}}; pipelines alternate within every rep and
    their order rotates between reps, so a slow moment of the machine hits all of them."""
    names = list(PIPELINES)
    for _case, data in images.items():  # warm up: imports, first-call allocations
        for name in names:
            PIPELINES[name](data)
    samples = {case: {name: [] for name in names} for case in images}
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for case, data in images.items():
            for name in order:
                func, n = PIPELINES[name], iterations[case]
                start = time.perf_counter()
                for _ in range(n):
                    func(data)
                samples[case][name].append((time.perf_counter() - start) / n * 1000)
    return {
        case: {
            name: {"median_ms": statistics.median(values), "samples_ms": values}
            for name, values in by_name.items()
        }
        for case, by_name in samples.items()
    }
