"""Typed gateway settings, read once from the environment (nothing is read at import time).

Every setting is read here (Settings.from_env) and described once (DOCS below), from which
docs/gateway.md's table is generated (`make docs`); a test checks that the variables read and
the variables described are the same. The Helm chart maps its values onto these names.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

PREPROCESSING_FAMILIES = ("xception", "resnet50", "vgg16", "inception_v3")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(ValueError):
    """A setting has a value the gateway cannot run with; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    tf_serving_host: str = "localhost:8500"
    model_name: str = "clothing-model"
    model_signature: str = "serving_default"
    scores_output: str = ""  # empty: the signature's one numeric output
    listen_host: str = "0.0.0.0"
    port: int = 9696
    threads: int = 8
    max_in_flight: int = 16
    labels: tuple[str, ...] = ()
    preprocessing: str = "xception"
    apply_softmax: bool = False
    image_size: tuple[int, int] | None = None  # (width, height) when the model's shape is dynamic
    grpc_timeout_seconds: float = 10.0
    metadata_refresh_seconds: float = 30.0
    ready_cache_seconds: float = 2.0
    fetch_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    fetch_allowed_ports: frozenset[int] = field(default_factory=lambda: frozenset({80, 443}))
    fetch_timeout_seconds: float = 10.0
    fetch_connect_timeout_seconds: float = 3.0
    fetch_max_bytes: int = 10 * 1024 * 1024
    fetch_max_redirects: int = 3
    max_image_pixels: int = 50_000_000
    max_request_bytes: int = 16 * 1024 * 1024
    max_buffered_bytes: int = 64 * 1024 * 1024
    log_level: str = "INFO"
    url_prefix: str = ""  # e.g. "/clothes": the API also answers under it (an Ingress path)
    shutdown_grace_seconds: float = 20.0
    shutdown_delay_seconds: float = 0.0

    def __post_init__(self) -> None:
        for name, value, what in (
            ("MAX_REQUEST_BYTES", self.max_request_bytes, "a request body"),
            ("FETCH_MAX_BYTES", self.fetch_max_bytes, "an image download"),
        ):
            if self.max_buffered_bytes < value:
                raise SettingsError(
                    f"MAX_BUFFERED_BYTES={self.max_buffered_bytes} is below {name}={value}: "
                    f"{what} of the largest allowed size could never be held"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: os.environ); unknown variables are ignored."""
        env = os.environ if env is None else env
        reader = _EnvReader(env)
        return cls(
            tf_serving_host=reader.text("TF_SERVING_HOST", cls.tf_serving_host),
            model_name=reader.text("MODEL_NAME", cls.model_name),
            model_signature=reader.text("MODEL_SIGNATURE", cls.model_signature),
            scores_output=reader.text("MODEL_SCORES_OUTPUT", ""),
            listen_host=reader.text("LISTEN_HOST", cls.listen_host),
            port=reader.integer("PORT", cls.port, 1, 65535),
            threads=reader.integer("THREADS", cls.threads, 1, 256),
            max_in_flight=reader.integer("MAX_IN_FLIGHT", cls.max_in_flight, 1, 1024),
            labels=reader.csv("LABELS"),
            preprocessing=reader.choice("PREPROCESSING", cls.preprocessing, PREPROCESSING_FAMILIES),
            apply_softmax=reader.boolean("APPLY_SOFTMAX", cls.apply_softmax),
            image_size=reader.size("IMAGE_SIZE"),
            grpc_timeout_seconds=reader.number("GRPC_TIMEOUT_SECONDS", cls.grpc_timeout_seconds),
            metadata_refresh_seconds=reader.number("METADATA_REFRESH_SECONDS", cls.metadata_refresh_seconds),
            ready_cache_seconds=reader.number("READY_CACHE_SECONDS", cls.ready_cache_seconds, minimum=0.0),
            fetch_allowed_networks=reader.networks("FETCH_ALLOWED_NETWORKS"),
            fetch_allowed_ports=reader.ports("FETCH_ALLOWED_PORTS", "80,443"),
            fetch_timeout_seconds=reader.number("FETCH_TIMEOUT_SECONDS", cls.fetch_timeout_seconds),
            fetch_connect_timeout_seconds=reader.number(
                "FETCH_CONNECT_TIMEOUT_SECONDS", cls.fetch_connect_timeout_seconds
            ),
            fetch_max_bytes=reader.integer("FETCH_MAX_BYTES", cls.fetch_max_bytes, 1, 2**31),
            fetch_max_redirects=reader.integer("FETCH_MAX_REDIRECTS", cls.fetch_max_redirects, 0, 20),
            max_image_pixels=reader.integer("MAX_IMAGE_PIXELS", cls.max_image_pixels, 1, 2**31),
            max_request_bytes=reader.integer("MAX_REQUEST_BYTES", cls.max_request_bytes, 1024, 2**31),
            max_buffered_bytes=reader.integer("MAX_BUFFERED_BYTES", cls.max_buffered_bytes, 1024, 2**40),
            log_level=reader.choice("LOG_LEVEL", cls.log_level, LOG_LEVELS, upper=True),
            url_prefix=reader.url_prefix("URL_PREFIX"),
            shutdown_grace_seconds=reader.number(
                "SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds, minimum=0.0
            ),
            shutdown_delay_seconds=reader.number(
                "SHUTDOWN_DELAY_SECONDS", cls.shutdown_delay_seconds, minimum=0.0
            ),
        )


# Variable -> (Settings field, what it means[, the default as the docs show it when the field's
# value alone would not say it]). docs/gateway.md's settings table is generated from this.
DOCS: dict[str, tuple[str, ...]] = {
    "TF_SERVING_HOST": (
        "tf_serving_host",
        "gRPC target of the model server. `dns:///name:port` and `ipv4:a:p,b:p` balance over all addresses (round_robin)",
    ),
    "MODEL_NAME": ("model_name", "model name in every request"),
    "MODEL_SIGNATURE": ("model_signature", "signature to call and to read from GetModelMetadata"),
    "MODEL_SCORES_OUTPUT": (
        "scores_output",
        "name of the scores output, needed only if the signature has several float outputs",
        "(auto)",
    ),
    "LABELS": (
        "labels",
        "comma-separated class names in output order. Empty: the model's `labels` output, else `class_<i>`",
    ),
    "PREPROCESSING": (
        "preprocessing",
        "`xception`, `inception_v3`, `resnet50` or `vgg16`: scaling of float32 inputs (ignored for uint8 inputs)",
    ),
    "APPLY_SOFTMAX": ("apply_softmax", "`true` returns probabilities instead of the model's raw scores"),
    "IMAGE_SIZE": (
        "image_size",
        "`299` or `WxH`, used only when the model's input has a dynamic height/width",
        "(from the model)",
    ),
    "PORT": ("port", "HTTP port"),
    "LISTEN_HOST": ("listen_host", "bind address"),
    "THREADS": (
        "threads",
        "threads that decode images over 1 megapixel, holding at most `MAX_IMAGE_PIXELS` decoded pixels "
        "together (more wait in arrival order); requests are served on one event loop, and smaller images are decoded on it",
    ),
    "MAX_IN_FLIGHT": (
        "max_in_flight",
        "predictions fetched, decoded and sent to the model at once; more wait in arrival order "
        "(this bounds the images in memory and the work in progress)",
    ),
    "GRPC_TIMEOUT_SECONDS": ("grpc_timeout_seconds", "deadline of each Predict / GetModelMetadata call"),
    "METADATA_REFRESH_SECONDS": (
        "metadata_refresh_seconds",
        "how often the signature is re-read from the model server",
    ),
    "READY_CACHE_SECONDS": ("ready_cache_seconds", "how long a `/readyz` result is reused"),
    "FETCH_ALLOWED_NETWORKS": (
        "fetch_allowed_networks",
        "comma-separated CIDRs that URL fetching may reach although private, loopback, etc.",
    ),
    "FETCH_ALLOWED_PORTS": ("fetch_allowed_ports", "ports a URL may name"),
    "FETCH_TIMEOUT_SECONDS": ("fetch_timeout_seconds", "total deadline of one download, redirects included"),
    "FETCH_CONNECT_TIMEOUT_SECONDS": ("fetch_connect_timeout_seconds", "TCP connect timeout per address"),
    "FETCH_MAX_BYTES": ("fetch_max_bytes", "largest download"),
    "FETCH_MAX_REDIRECTS": ("fetch_max_redirects", "redirects followed (0: a redirect is an error)"),
    "MAX_IMAGE_PIXELS": (
        "max_image_pixels",
        "largest image (width × height) that is decoded, and the most pixels the `THREADS` decode at once",
    ),
    "MAX_REQUEST_BYTES": ("max_request_bytes", "largest request body (base64 and uploads)"),
    "MAX_BUFFERED_BYTES": (
        "max_buffered_bytes",
        "request bodies and downloaded images held in memory at once, counted by their "
        "Content-Length (`MAX_REQUEST_BYTES` for a chunked body, `FETCH_MAX_BYTES` for a download "
        "without one); a prediction whose body or image does not fit is answered 503 `server_busy` "
        "with `Retry-After`. At least `MAX_REQUEST_BYTES` and `FETCH_MAX_BYTES`",
    ),
    "LOG_LEVEL": ("log_level", "`DEBUG`, `INFO`, `WARNING` or `ERROR`"),
    "URL_PREFIX": (
        "url_prefix",
        "e.g. `/clothes`: the API answers under it too (`/clothes/predict`); the chart sets it from a non-root `ingress.path`",
    ),
    "SHUTDOWN_GRACE_SECONDS": ("shutdown_grace_seconds", "how long SIGTERM waits for requests in flight"),
    "SHUTDOWN_DELAY_SECONDS": (
        "shutdown_delay_seconds",
        "after SIGTERM, keep accepting connections (with `/readyz` failing) for this long before draining; a few seconds in Kubernetes, where endpoint removal lags",
    ),
}


class _EnvReader:
    """Parses one variable at a time and says which variable was wrong and why."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str) -> str:
        value = self._raw(name)
        return default if value is None else value

    def url_prefix(self, name: str) -> str:
        """ "/a/b" (a leading slash, none at the end); "" or "/" mean no prefix."""
        value = self._raw(name)
        if value is None or value == "/":
            return ""
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+/?", value):
            raise SettingsError(f"{name}={value!r} is not a URL path like /clothes")
        return value.rstrip("/")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name}={value!r} is not an integer") from None
        if not low <= number <= high:
            raise SettingsError(f"{name}={number} is outside {low}..{high}")
        return number

    def number(self, name: str, default: float, minimum: float = 0.001) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name}={value!r} is not a number") from None
        if not number >= minimum or number == float("inf"):
            raise SettingsError(f"{name}={value!r} must be a finite number >= {minimum}")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}={value!r} is not a boolean (true/false)")

    def choice(self, name: str, default: str, allowed: tuple[str, ...], upper: bool = False) -> str:
        value = self._raw(name)
        if value is None:
            return default
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise SettingsError(f"{name}={value!r} must be one of {', '.join(allowed)}")
        return value

    def csv(self, name: str) -> tuple[str, ...]:
        value = self._raw(name)
        if value is None:
            return ()
        items = tuple(item.strip() for item in value.split(","))
        if any(not item for item in items):
            raise SettingsError(f"{name} has an empty entry: {value!r}")
        if len(set(items)) != len(items):
            raise SettingsError(f"{name} repeats a label: {value!r}")
        return items

    def networks(self, name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        networks = []
        for item in self.csv(name):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise SettingsError(f"{name}: {item!r} is not a CIDR network") from None
        return tuple(networks)

    def ports(self, name: str, default: str) -> frozenset[int]:
        value = self._raw(name) or default
        ports = set()
        for item in value.split(","):
            try:
                port = int(item.strip())
            except ValueError:
                raise SettingsError(f"{name}: {item.strip()!r} is not a port number") from None
            if not 1 <= port <= 65535:
                raise SettingsError(f"{name}: {port} is outside 1..65535")
            ports.add(port)
        return frozenset(ports)

    def size(self, name: str) -> tuple[int, int] | None:
        """`299` or `299x299` (width x height)."""
        value = self._raw(name)
        if value is None:
            return None
        parts = value.lower().split("x")
        try:
            numbers = [int(part) for part in parts]
        except ValueError:
            raise SettingsError(f"{name}={value!r} is not SIZE or WIDTHxHEIGHT") from None
        if len(numbers) == 1:
            numbers *= 2
        if len(numbers) != 2 or not all(1 <= n <= 8192 for n in numbers):
            raise SettingsError(f"{name}={value!r} is not SIZE or WIDTHxHEIGHT within 1..8192")
        return numbers[0], numbers[1]
