"""numpy <-> TensorProto without TensorFlow.

Requests carry the image batch as `tensor_content` (the raw little-endian buffer: one copy, no
per-element protobuf fields). Responses may come back either way: TF Serving fills
`tensor_content` for numeric outputs, other servers and older versions fill the typed repeated
fields (`float_val`, ...), where a single value may also stand for a whole tensor of that value.
"""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

# dtype enum -> (numpy dtype, name of the repeated field that carries values when
# tensor_content is empty). Half floats travel as int32 bit patterns in half_val.
NUMERIC_TYPES = {
    types_pb2.DT_FLOAT: (np.dtype("<f4"), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype("<f8"), "double_val"),
    types_pb2.DT_HALF: (np.dtype("<f2"), "half_val"),
    types_pb2.DT_INT32: (np.dtype("<i4"), "int_val"),
    types_pb2.DT_INT64: (np.dtype("<i8"), "int64_val"),
    types_pb2.DT_UINT8: (np.dtype("u1"), "int_val"),
    types_pb2.DT_INT8: (np.dtype("i1"), "int_val"),
    types_pb2.DT_INT16: (np.dtype("<i2"), "int_val"),
    types_pb2.DT_UINT16: (np.dtype("<u2"), "int_val"),
    types_pb2.DT_BOOL: (np.dtype("?"), "bool_val"),
}
_BY_NUMPY = {np.dtype(v[0]).newbyteorder("="): k for k, v in NUMERIC_TYPES.items()}

FLOAT_TYPES = frozenset({types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF})


class TensorDecodeError(ValueError):
    """A response tensor the gateway cannot turn into an array (bad size, unknown dtype)."""


def dtype_name(dtype_enum: int) -> str:
    return (
        types_pb2.DataType.Name(dtype_enum) if dtype_enum in types_pb2.DataType.values() else str(dtype_enum)
    )


def _little_endian(array: np.ndarray) -> tuple[int, np.ndarray]:
    """The dtype enum of `array` and its values as a C-contiguous little-endian array."""
    dtype_enum = _BY_NUMPY.get(array.dtype.newbyteorder("="))
    if dtype_enum is None:
        raise TypeError(f"no TensorProto dtype for numpy {array.dtype}")
    return dtype_enum, np.ascontiguousarray(array.astype(NUMERIC_TYPES[dtype_enum][0], copy=False))


def _shape_proto(shape: tuple[int, ...]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(n)) for n in shape]
    )


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Encode a numeric array as a TensorProto whose values sit in `tensor_content`."""
    dtype_enum, content = _little_endian(array)
    return tensor_pb2.TensorProto(
        dtype=dtype_enum, tensor_shape=_shape_proto(array.shape), tensor_content=content.tobytes()
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(field: int, size: int) -> bytes:
    """Tag and length of a length-delimited (wire type 2) field; its payload follows."""
    return _varint(field << 3 | 2) + _varint(size)


def encode_predict_request(
    model_name: str, signature_name: str, input_name: str, array: np.ndarray, output_filter: list[str]
) -> bytes:
    """The serialized `PredictRequest` for one input tensor, with the array's buffer copied once.

    Building the message with protobuf copies a 1 MB tensor four times (tobytes, TensorProto,
    CopyFrom into the map, SerializeToString); here protobuf serializes only the small parts
    and the raw buffer is joined in after them. Protobuf parsers accept fields in any order, and
    the bytes parse to exactly the message protobuf would build (gateway/tests check that).
    """
    dtype_enum, content = _little_endian(array)
    payload = memoryview(content).cast("B")
    head = tensor_pb2.TensorProto(
        dtype=dtype_enum, tensor_shape=_shape_proto(array.shape)
    ).SerializeToString()
    content_head = _length_delimited(4, payload.nbytes)
    tensor_size = len(head) + len(content_head) + payload.nbytes
    key = input_name.encode("utf-8")
    entry_head = _length_delimited(1, len(key)) + key + _length_delimited(2, tensor_size)
    rest = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name),
        output_filter=output_filter,
    ).SerializeToString()
    return b"".join(
        (rest, _length_delimited(2, len(entry_head) + tensor_size), entry_head, head, content_head, payload)
    )


def shape_of(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
    return tuple(int(d.size) for d in proto.tensor_shape.dim)


def from_tensor_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Decode a numeric or string TensorProto into a numpy array of its declared shape."""
    shape = shape_of(proto)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if proto.dtype == types_pb2.DT_STRING:
        values = [v.decode("utf-8", "replace") for v in proto.string_val]
        return _fill(np.array(values, dtype=object), shape, count, "string_val")
    if proto.dtype not in NUMERIC_TYPES:
        raise TensorDecodeError(f"unsupported output dtype {dtype_name(proto.dtype)}")
    dtype, field = NUMERIC_TYPES[proto.dtype]
    if proto.tensor_content:
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise TensorDecodeError(
                f"tensor_content has {len(proto.tensor_content)} bytes, "
                f"shape {list(shape)} of {dtype} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    raw = getattr(proto, field)
    if proto.dtype == types_pb2.DT_HALF:
        values = np.array(raw, dtype=np.uint16).view(np.float16)
    else:
        values = np.array(raw, dtype=dtype)
    return _fill(values, shape, count, field)


def _fill(values: np.ndarray, shape: tuple[int, ...], count: int, field: str) -> np.ndarray:
    # A repeated field holding one value means "every element has this value" (TF's convention).
    if values.size == count:
        return values.reshape(shape)
    if values.size == 1 and count > 1:
        return np.full(shape, values[0], dtype=values.dtype)
    raise TensorDecodeError(f"{field} holds {values.size} values, shape {list(shape)} needs {count}")
