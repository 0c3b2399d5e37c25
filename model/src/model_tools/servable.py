"""One loaded SavedModel version: its signatures (as TF Serving reports them) and Predict."""

from __future__ import annotations

import logging
import pathlib

import numpy as np

from model_tools import DEFAULT_SIGNATURE, tensor_codec
from model_tools.status import ServingError

log = logging.getLogger("model_tools.serve")


def read_signature_defs(version_dir: pathlib.Path):
    """The ``serve`` MetaGraph's SignatureDef map, straight from saved_model.pb."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((version_dir / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph.signature_def
    raise ValueError(f"{version_dir}: no MetaGraph tagged 'serve'")


class Servable:
    """A SavedModel version loaded with TensorFlow. Thread-safe: it is read-only once built."""

    def __init__(self, name: str, version: int, path: pathlib.Path):
        import tensorflow as tf

        self.name, self.version, self.path = name, version, path
        self.signature_defs = read_signature_defs(path)
        self._loaded = tf.saved_model.load(str(path), tags=["serve"])
        self._functions = dict(self._loaded.signatures)

    def predict(
        self, inputs: dict[str, np.ndarray], signature_name: str = "", output_filter=()
    ) -> dict[str, np.ndarray]:
        import tensorflow as tf

        signature_name = signature_name or DEFAULT_SIGNATURE
        if signature_name not in self.signature_defs or signature_name not in self._functions:
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{signature_name}" not found.')
        signature = self.signature_defs[signature_name]
        expected = sorted(signature.inputs)
        sent = sorted(inputs)
        if len(sent) != len(expected):
            raise ServingError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sent)}}}) != len({{{','.join(expected)}}}). "
                f"Sent extra: {{{','.join(sorted(set(sent) - set(expected)))}}}. "
                f"Missing but required: {{{','.join(sorted(set(expected) - set(sent)))}}}.",
            )
        feeds = {}
        for position, alias in enumerate(sent):
            if alias not in signature.inputs:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"input tensor alias not found in signature: {alias}. "
                    f"Inputs expected to be in the set {{{','.join(expected)}}}.",
                )
            info = signature.inputs[alias]
            feeds[alias] = self._check_input(position, alias, info, inputs[alias])
        wanted = list(output_filter) or list(signature.outputs)
        for alias in wanted:
            if alias not in signature.outputs:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(sorted(signature.outputs))}}}.",
                )
        if len(set(wanted)) != len(wanted):
            raise ServingError("INVALID_ARGUMENT", "duplicate output tensor alias")
        try:
            outputs = self._functions[signature_name](
                **{alias: tf.constant(value) for alias, value in feeds.items()}
            )
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise ServingError("INVALID_ARGUMENT", str(exc).strip().splitlines()[0]) from exc
        return {alias: outputs[alias].numpy() for alias in wanted}

    @staticmethod
    def _check_input(position: int, alias: str, info, value: np.ndarray) -> np.ndarray:
        want = tensor_codec.numpy_dtype(info.dtype)
        got = value.dtype
        if want is object:
            if got.kind not in ("O", "S", "U"):
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Expects arg[{position}] to be string "
                    f"but {tensor_codec.dtype_name(tensor_codec.enum_of(value))} "
                    "is provided",
                )
        elif got != np.dtype(want):
            got_name = (
                "string"
                if got.kind in ("O", "S", "U")
                else tensor_codec.dtype_name(tensor_codec.enum_of(value))
            )
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Expects arg[{position}] to be "
                f"{tensor_codec.dtype_name(info.dtype)} but {got_name} is provided",
            )
        if not info.tensor_shape.unknown_rank:
            dims = [d.size for d in info.tensor_shape.dim]
            if len(dims) != value.ndim or any(d >= 0 and d != s for d, s in zip(dims, value.shape)):
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"input tensor {alias} has shape {list(value.shape)}, the signature expects "
                    f"{dims} (-1 = any size)",
                )
        return value

    def run_warmup(self) -> int:
        """Replay assets.extra/tf_serving_warmup_requests, as TF Serving does before AVAILABLE."""
        from model_tools import warmup

        path = self.path / "assets.extra" / warmup.FILENAME
        if not path.is_file():
            return 0
        count = 0
        for request in warmup.read_requests(path):
            inputs = {k: tensor_codec.to_numpy(v) for k, v in request.inputs.items()}
            self.predict(inputs, request.model_spec.signature_name, request.output_filter)
            count += 1
        return count
