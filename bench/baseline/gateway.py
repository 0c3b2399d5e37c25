"""The lesson's gateway: Flask + keras-image-helper + one gRPC channel, names hard-coded.

Served as in the lesson's image: `gunicorn --bind=0.0.0.0:9696 gateway:app` (the benchmark binds
127.0.0.1 and imports it as bench.baseline.gateway:app), and with waitress for a fair server.
Like the lesson, it reads TF_SERVING_HOST and opens its channel at import time.
"""
import os

import grpc
from flask import Flask, jsonify, request
from keras_image_helper import create_preprocessor
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from bench.baseline.proto import np_to_protobuf

# The lesson's SavedModel names, which bench/backend.py's instant model server reproduces.
INPUT_NAME = "input_8"
OUTPUT_NAME = "dense_7"
MODEL_NAME = "clothing-model"
SIGNATURE_NAME = "serving_default"

host = os.getenv("TF_SERVING_HOST", "localhost:8500")
channel = grpc.insecure_channel(host)
stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

preprocessor = create_preprocessor("xception", target_size=(299, 299))

classes = [
    "dress",
    "hat",
    "longsleeve",
    "outwear",
    "pants",
    "shirt",
    "shoes",
    "shorts",
    "skirt",
    "t-shirt",
]


def prepare_request(X):
    pb_request = predict_pb2.PredictRequest()
    pb_request.model_spec.name = MODEL_NAME
    pb_request.model_spec.signature_name = SIGNATURE_NAME
    pb_request.inputs[INPUT_NAME].CopyFrom(np_to_protobuf(X))
    return pb_request


def prepare_response(pb_response):
    preds = pb_response.outputs[OUTPUT_NAME].float_val
    return dict(zip(classes, preds))


def predict(url):
    X = preprocessor.from_url(url)
    pb_request = prepare_request(X)
    pb_response = stub.Predict(pb_request, timeout=20.0)
    return prepare_response(pb_response)


app = Flask("gateway")


@app.route("/predict", methods=["POST"])
def predict_endpoint():
    data = request.get_json()
    url = data["url"]
    result = predict(url)
    return jsonify(result)
