import ipaddress

import pytest

from gateway.settings import Settings, SettingsError


def test_defaults_match_the_documented_contract():
    s = Settings.from_env({})
    assert s.tf_serving_host == "localhost:8500"
    assert s.model_name == "clothing-model"
    assert s.model_signature == "serving_default"
    assert s.port == 9696
    assert s.fetch_allowed_networks == ()
    assert s.fetch_allowed_ports == frozenset({80, 443})
    assert s.labels == ()
    assert s.preprocessing == "xception"
    assert s.apply_softmax is False


def test_reads_every_variable():
    s = Settings.from_env(
        {
            "TF_SERVING_HOST": "dns:///model-server-headless:8500",
            "MODEL_NAME": "m",
            "MODEL_SIGNATURE": "sig",
            "PORT": "8080",
            "THREADS": "16",
            "MAX_IN_FLIGHT": "64",
            "LABELS": "a, b ,c",
            "PREPROCESSING": "ResNet50",
            "APPLY_SOFTMAX": "true",
            "IMAGE_SIZE": "224x160",
            "GRPC_TIMEOUT_SECONDS": "2.5",
            "FETCH_ALLOWED_NETWORKS": "10.0.0.0/8, fd00::/8",
            "FETCH_ALLOWED_PORTS": "80,8080",
            "FETCH_TIMEOUT_SECONDS": "4",
            "FETCH_MAX_BYTES": "1000",
            "FETCH_MAX_REDIRECTS": "0",
            "MAX_IMAGE_PIXELS": "1000000",
            "MAX_REQUEST_BYTES": "2048",
            "LOG_LEVEL": "debug",
            "METADATA_REFRESH_SECONDS": "5",
            "MODEL_SCORES_OUTPUT": "logits",
            "URL_PREFIX": "/clothes/",
        }
    )
    assert s.url_prefix == "/clothes"
    assert s.tf_serving_host == "dns:///model-server-headless:8500"
    assert (s.model_name, s.model_signature, s.port, s.threads) == ("m", "sig", 8080, 16)
    assert s.max_in_flight == 64
    assert s.labels == ("a", "b", "c")
    assert s.preprocessing == "resnet50" and s.apply_softmax is True
    assert s.image_size == (224, 160)
    assert s.fetch_allowed_networks == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    assert s.fetch_allowed_ports == frozenset({80, 8080})
    assert (s.fetch_timeout_seconds, s.fetch_max_bytes, s.fetch_max_redirects) == (4.0, 1000, 0)
    assert (s.max_image_pixels, s.max_request_bytes, s.log_level) == (1_000_000, 2048, "DEBUG")
    assert s.metadata_refresh_seconds == 5.0 and s.scores_output == "logits"


def test_square_image_size_shorthand():
    assert Settings.from_env({"IMAGE_SIZE": "299"}).image_size == (299, 299)


@pytest.mark.parametrize(
    "name,value",
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("THREADS", "0"),
        ("MAX_IN_FLIGHT", "0"),
        ("APPLY_SOFTMAX", "maybe"),
        ("PREPROCESSING", "mobilenet"),
        ("FETCH_ALLOWED_NETWORKS", "10.0.0.0/33"),
        ("FETCH_ALLOWED_NETWORKS", "intranet"),
        ("FETCH_ALLOWED_PORTS", "80,x"),
        ("LABELS", "a,,b"),
        ("LABELS", "a,a"),
        ("GRPC_TIMEOUT_SECONDS", "-1"),
        ("FETCH_TIMEOUT_SECONDS", "inf"),
        ("IMAGE_SIZE", "299x"),
        ("LOG_LEVEL", "chatty"),
        ("URL_PREFIX", "clothes"),
        ("URL_PREFIX", "/a b"),
        ("MAX_REQUEST_BYTES", "10"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_blank_values_mean_default():
    assert Settings.from_env({"PORT": " ", "LABELS": ""}) == Settings.from_env({})
