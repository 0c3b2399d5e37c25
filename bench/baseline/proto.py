"""numpy array -> TensorProto without TensorFlow's make_tensor_proto, as the lesson's proto.py.

The lesson builds the proto by hand (dtype, shape dims, raw bytes in `tensor_content`) so the
gateway image does not need TensorFlow. Only float32 is supported, as there.
"""
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2


def dtype_of(array_dtype):
    if array_dtype == "float32":
        return types_pb2.DT_FLOAT
    raise ValueError(f"dtype {array_dtype} is not supported")


def make_tensor_proto(data):
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in data.shape]
    proto = tensor_pb2.TensorProto(
        dtype=dtype_of(data.dtype),
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims),
    )
    proto.tensor_content = data.tobytes()
    return proto


def np_to_protobuf(data):
    if data.dtype != "float32":
        data = data.astype("float32")
    return make_tensor_proto(data)
