"""TensorProto <-> numpy, the way TF Serving reads requests and writes responses.

Requests may carry ``tensor_content`` (what ``tf.make_tensor_proto`` and the gateway send) or
the typed ``*_val`` fields (a single value is broadcast to the whole shape, as TensorFlow does).
Responses use the typed fields (TF Serving's default ``AsProtoField`` serialization).
"""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import types_pb2

from model_tools.status import ServingError

# DataType enum -> (numpy dtype, TensorProto field, TF name used in error messages)
_DTYPES = {
    types_pb2.DT_FLOAT: (np.float32, "float_val", "float"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val", "double"),
    types_pb2.DT_INT32: (np.int32, "int_val", "int32"),
    types_pb2.DT_UINT8: (np.uint8, "int_val", "uint8"),
    types_pb2.DT_INT16: (np.int16, "int_val", "int16"),
    types_pb2.DT_INT8: (np.int8, "int_val", "int8"),
    types_pb2.DT_STRING: (object, "string_val", "string"),
    types_pb2.DT_INT64: (np.int64, "int64_val", "int64"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val", "bool"),
    types_pb2.DT_UINT16: (np.uint16, "int_val", "uint16"),
    types_pb2.DT_HALF: (np.float16, "half_val", "half"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val", "uint32"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val", "uint64"),
}
_BY_NUMPY = {np.dtype(v[0]): k for k, v in _DTYPES.items() if v[0] is not object}


def dtype_name(enum_value: int) -> str:
    return _DTYPES.get(enum_value, (None, None, f"dtype {enum_value}"))[2]


def numpy_dtype(enum_value: int):
    if enum_value not in _DTYPES:
        raise ServingError("INVALID_ARGUMENT", f"unsupported tensor dtype enum {enum_value}")
    return _DTYPES[enum_value][0]


def enum_of(array: np.ndarray) -> int:
    if array.dtype.kind in ("O", "S", "U"):
        return types_pb2.DT_STRING
    if array.dtype not in _BY_NUMPY:
        raise ServingError("INTERNAL", f"cannot serialize a tensor of numpy dtype {array.dtype}")
    return _BY_NUMPY[array.dtype]


def to_numpy(proto) -> np.ndarray:
    """A request TensorProto -> ndarray of its declared dtype and shape."""
    shape = [d.size for d in proto.tensor_shape.dim]
    if any(size < 0 for size in shape):
        raise ServingError("INVALID_ARGUMENT", f"tensor shape {shape} has a negative dimension")
    dtype = numpy_dtype(proto.dtype)
    count = int(np.prod(shape)) if shape else 1
    if proto.tensor_content and dtype is not object:
        flat = np.frombuffer(proto.tensor_content, dtype=dtype)
    else:
        field = _DTYPES[proto.dtype][1]
        values = list(getattr(proto, field))
        if dtype is object:
            flat = np.array(values, dtype=object)
        elif field == "half_val":  # halves travel as their 16-bit patterns
            flat = np.array(values, dtype=np.uint16).view(np.float16)
        else:
            flat = np.array(values, dtype=dtype)
        if len(flat) == 1 and count > 1:
            flat = np.repeat(flat, count)
    if flat.size != count:
        raise ServingError(
            "INVALID_ARGUMENT", f"tensor has {flat.size} values, its shape {shape} needs {count}"
        )
    return flat.reshape(shape)


def to_proto(array: np.ndarray, proto) -> None:
    """Fill ``proto`` (a TensorProto) from ``array`` using the typed value fields."""
    array = np.asarray(array)
    proto.dtype = enum_of(array)
    for size in array.shape:
        proto.tensor_shape.dim.add().size = int(size)
    flat = array.ravel()
    if proto.dtype == types_pb2.DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    elif proto.dtype == types_pb2.DT_HALF:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    else:
        getattr(proto, _DTYPES[proto.dtype][1]).extend(flat.tolist())
