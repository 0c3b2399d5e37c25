"""The gateway (gateway.tensors, no TensorFlow) and the model server (model_tools.tensor_codec)
read TensorProtos with two small implementations on purpose (they share no code): this test
decodes the same protos — TensorFlow's own `make_tensor_proto`, in both the packed
`tensor_content` and the typed `*_val` forms, and each side's own encoding — with both and
requires the same arrays."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from gateway.tensors import from_tensor_proto, to_tensor_proto
from model_tools.tensor_codec import to_numpy, to_proto

RNG = np.random.default_rng(11)
ARRAYS = {
    "float32": RNG.normal(size=(2, 3, 4)).astype(np.float32),
    "float64": RNG.normal(size=(5,)).astype(np.float64),
    "float16": RNG.normal(size=(3, 2)).astype(np.float16),
    "uint8": RNG.integers(0, 256, size=(1, 4, 4, 3)).astype(np.uint8),
    "int32": RNG.integers(-1000, 1000, size=(7,)).astype(np.int32),
    "int64": RNG.integers(-(2**40), 2**40, size=(2, 2)).astype(np.int64),
    "bool": RNG.integers(0, 2, size=(4,)).astype(bool),
    "scalar": np.array(3.5, dtype=np.float32),
}


def _typed(array: np.ndarray) -> tensor_pb2.TensorProto:
    """TensorFlow's proto with typed fields (what a response carries)."""
    typed = tensor_pb2.TensorProto()
    to_proto(array, typed)  # model_tools' typed writer; tf.make_ndarray checks it below
    assert not typed.tensor_content
    return typed


@pytest.mark.parametrize("name", ARRAYS)
def test_both_sides_decode_tensorflows_protos_alike(name):
    array = ARRAYS[name]
    for proto in (tf.make_tensor_proto(array), _typed(array)):
        served = to_numpy(proto)
        gateway = from_tensor_proto(proto)
        np.testing.assert_array_equal(served, array)
        np.testing.assert_array_equal(gateway, array)
        assert served.dtype == gateway.dtype == array.dtype
        np.testing.assert_array_equal(tf.make_ndarray(proto), array)


@pytest.mark.parametrize("name", ARRAYS)
def test_each_side_reads_what_the_other_writes(name):
    array = ARRAYS[name]
    written_by_gateway = to_tensor_proto(array)
    np.testing.assert_array_equal(to_numpy(written_by_gateway), array)
    written_by_server = tensor_pb2.TensorProto()
    to_proto(array, written_by_server)
    np.testing.assert_array_equal(from_tensor_proto(written_by_server), array)


def test_strings_decode_to_the_same_text():
    """The model server keeps TensorFlow's bytes; the gateway decodes UTF-8 (labels become JSON keys)."""
    proto = tf.make_tensor_proto(np.array(["cat", "t-shirt", "émeu"], dtype=object))
    served = [value.decode() for value in to_numpy(proto)]
    assert served == list(from_tensor_proto(proto)) == ["cat", "t-shirt", "émeu"]
