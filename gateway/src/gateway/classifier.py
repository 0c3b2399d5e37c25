"""Image bytes -> `{label: score}`: preprocessing for the discovered signature, the model call,
labels, optional softmax and top-k.

Labels, first match wins: `LABELS` from configuration (the chart passes them); else the model's
own DT_STRING `labels` output (added by `model convert --labels`); else `class_<i>`.
Scores are what the model outputs (logits for the demo model, like the lesson) unless
`APPLY_SOFTMAX=true`, which turns them into probabilities that sum to 1.

Small images (up to _INLINE_PIXELS, by their header) are decoded on the event loop (~1 ms for the
dataset's 400x533 JPEG: a hand-off to a thread would cost more than it saves); bigger ones in a
pool of THREADS threads, so a 12-megapixel photo never stalls the other requests. Those hold at
most MAX_IMAGE_PIXELS decoded pixels at once (imaging.PixelBudget): memory, not THREADS, bounds
how many huge images decode together.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import numpy as np
from PIL import Image

from gateway.errors import GatewayError
from gateway.imaging import PixelBudget, open_image, resize_opened, to_model_input
from gateway.metrics import GatewayMetrics
from gateway.model_client import ModelClient, ModelSignature
from gateway.settings import Settings

_INLINE_PIXELS = 1_000_000


class Classifier:
    def __init__(self, settings: Settings, model: ModelClient, metrics: GatewayMetrics):
        self.settings = settings
        self.model = model
        self.metrics = metrics
        self.pool = concurrent.futures.ThreadPoolExecutor(settings.threads, thread_name_prefix="decode")
        # Images decoded in the pool hold at most one largest allowed image's pixels at once.
        self.pixels = PixelBudget(settings.max_image_pixels)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def classify(self, image: bytes, top_k: int | None = None) -> tuple[dict[str, float], int]:
        """`{label: score}` and the model version that answered."""
        # Refuse non-images and decompression bombs before asking the model server anything. The
        # header is parsed once: the opened image is what _predict decodes.
        opened = open_image(image, self.settings.max_image_pixels)
        signature = await self.model.signature()
        try:
            scores, model_labels, version = await self._predict(signature, opened)
        except GatewayError as error:
            if error.code not in ("model_rejected_input", "model_bad_response"):
                raise
            # The model may have been re-exported with other tensor names, dtype or size since
            # the last refresh: rediscover now, and retry once if the signature did change.
            fresh = await self.model.refresh_signature()
            if fresh == signature:
                raise
            scores, model_labels, version = await self._predict(
                fresh, open_image(image, self.settings.max_image_pixels)
            )
        labels = self._labels(len(scores), model_labels)
        if self.settings.apply_softmax:
            scores = softmax(scores)
        return top_scores(labels, scores, top_k), version

    async def _predict(self, signature: ModelSignature, image: Image.Image):
        with self.metrics.stage("decode"):
            if image.width * image.height <= _INLINE_PIXELS:
                batch = self._preprocess(image, signature)
            else:
                loop = asyncio.get_running_loop()
                batch = await loop.run_in_executor(self.pool, self._preprocess, image, signature, self.pixels)
        with self.metrics.stage("model"):
            return await self.model.predict(signature, batch)

    def _preprocess(
        self, image: Image.Image, signature: ModelSignature, budget: PixelBudget | None = None
    ) -> np.ndarray:
        """On the loop (small images) without a budget: the loop decodes one image at a time and
        must never wait for the pool's decodes."""
        rgb = resize_opened(image, signature.width, signature.height, self.settings.max_image_pixels, budget)
        return to_model_input(rgb, signature.input_dtype, self.settings.preprocessing)

    def _labels(self, count: int, model_labels: list[str] | None) -> list[str]:
        if self.settings.labels:
            if len(self.settings.labels) != count:
                raise GatewayError(
                    500,
                    "labels_mismatch",
                    f"LABELS names {len(self.settings.labels)} classes but the model outputs {count} scores",
                )
            return list(self.settings.labels)
        if model_labels is not None and len(model_labels) == count:
            return model_labels
        return [f"class_{i}" for i in range(count)]


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def top_scores(labels: list[str], scores: np.ndarray, top_k: int | None) -> dict[str, float]:
    """All classes in model order (the seed's shape), or the best `top_k`, highest first."""
    if not np.all(np.isfinite(scores)):
        raise GatewayError(502, "model_bad_response", "the model returned non-finite scores")
    values = [float(v) for v in scores]
    if top_k is None:
        return dict(zip(labels, values))
    order = sorted(range(len(values)), key=lambda i: values[i], reverse=True)[:top_k]
    return {labels[i]: values[i] for i in order}
