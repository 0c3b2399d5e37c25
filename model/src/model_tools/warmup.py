"""TF Serving warmup records: ``assets.extra/tf_serving_warmup_requests``.

TF Serving (``--enable_model_warmup``, on by default) replays these PredictionLog records
against a new version before marking it AVAILABLE, so the first real requests do not pay for
graph tracing and memory allocation. Format: a TFRecord file of serialized
``tensorflow.serving.PredictionLog`` messages, each holding a PredictRequest.
"""

from __future__ import annotations

import pathlib

FILENAME = "tf_serving_warmup_requests"


def build_request(model_name: str, signature: str, input_name: str, shape, uint8: bool, batch: int = 1):
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    dims = [batch] + [int(d) for d in shape[1:]]
    if uint8:
        pixels = np.full(dims, 128, dtype=np.uint8)  # mid-grey
    else:
        pixels = np.zeros(dims, dtype=np.float32)  # mid-grey after [-1, 1] scaling
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(pixels))
    return request


def write_records(
    path: pathlib.Path, *, model_name: str, signature: str, input_name: str, shape, uint8: bool, batches=(1,)
):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in batches:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=build_request(model_name, signature, input_name, shape, uint8, batch)
                )
            )
            writer.write(log.SerializeToString())


def read_requests(path: pathlib.Path):
    """The PredictRequests of a warmup file (used by `model serve` and the tests)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests
