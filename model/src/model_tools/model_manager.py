"""Which versions of which models are loaded: TF Serving's file-system polling, in small.

Each poll lists the numeric version directories under every model's base path, decides the
aspired versions from the version policy (latest N, specific, all), loads the new ones (and
replays their warmup records) *before* unloading the ones no longer aspired -- TF Serving's
availability-preserving policy, so a request always finds a servable.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import threading
import time

from model_tools.servable import Servable
from model_tools.status import ServingError, servable_not_found

log = logging.getLogger("model_tools.serve")
MAX_RETRY_SECONDS = 60.0


@dataclasses.dataclass
class ModelConfig:
    name: str
    base_path: pathlib.Path
    policy: str = "latest"  # latest | specific | all
    num_latest: int = 1
    specific_versions: tuple[int, ...] = ()
    version_labels: dict[str, int] = dataclasses.field(default_factory=dict)


def list_versions(base_path: pathlib.Path) -> list[int]:
    """Numeric version directories holding a saved_model.pb (dot-prefixed staging dirs and
    anything else are ignored, as TF Serving ignores non-numeric names)."""
    try:
        entries = list(base_path.iterdir())
    except FileNotFoundError:
        return []
    return sorted(int(p.name) for p in entries if p.name.isdigit() and (p / "saved_model.pb").is_file())


class ManagedModel:
    def __init__(self, config: ModelConfig, warmup: bool):
        self.config = config
        self.warmup = warmup
        self._servables: dict[int, Servable] = {}
        self._failures: dict[int, tuple[str, float, float]] = {}  # message, retry_at, backoff
        self._lock = threading.Lock()
        self._warned_empty = False

    def aspired(self, found: list[int]) -> list[int]:
        if self.config.policy == "all":
            return found
        if self.config.policy == "specific":
            return [v for v in found if v in self.config.specific_versions]
        return found[-self.config.num_latest :] if found else []

    def sync(self) -> None:
        found = list_versions(self.config.base_path)
        aspired = self.aspired(found)
        if not aspired:
            if not self._warned_empty:
                log.warning(
                    "No versions of servable %s found under base path %s",
                    self.config.name,
                    self.config.base_path,
                )
                self._warned_empty = True
            return  # keep what is loaded rather than serve nothing (see README: differences)
        self._warned_empty = False
        for version in aspired:
            if version not in self._servables:
                self._load(version)
        with self._lock:
            if any(v in self._servables for v in aspired):
                for version in [v for v in self._servables if v not in aspired]:
                    log.info("Unloading servable version {name: %s version: %d}", self.config.name, version)
                    del self._servables[version]

    def _load(self, version: int) -> None:
        failure = self._failures.get(version)
        if failure and time.monotonic() < failure[1]:
            return
        path = self.config.base_path / str(version)
        log.info("Loading servable version {name: %s version: %d} from %s", self.config.name, version, path)
        started = time.monotonic()
        try:
            servable = Servable(self.config.name, version, path)
            warmed = servable.run_warmup() if self.warmup else 0
        except Exception as exc:  # a broken version must not take the server down
            backoff = min(MAX_RETRY_SECONDS, failure[2] * 2 if failure else 2.0)
            self._failures[version] = (
                str(exc).splitlines()[0] if str(exc) else repr(exc),
                time.monotonic() + backoff,
                backoff,
            )
            log.error(
                "Loading servable version {name: %s version: %d} failed: %s (retry in %.0f s)",
                self.config.name,
                version,
                self._failures[version][0],
                backoff,
            )
            return
        self._failures.pop(version, None)
        with self._lock:
            self._servables[version] = servable
        log.info(
            "Successfully loaded servable version {name: %s version: %d} in %.1f s (%d warmup requests)",
            self.config.name,
            version,
            time.monotonic() - started,
            warmed,
        )

    def get(self, version: int | None = None, label: str | None = None) -> Servable:
        with self._lock:
            if label:
                version = self.config.version_labels.get(label)
                if version is None:  # TF Serving's ServerCore answers the same
                    raise ServingError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
            if version is None:
                if not self._servables:
                    raise servable_not_found(self.config.name)
                return self._servables[max(self._servables)]
            if version not in self._servables:
                raise servable_not_found(self.config.name, version)
            return self._servables[version]

    def status(self, version: int | None = None) -> list[tuple[int, str, str, str]]:
        """(version, state, error code, error message) rows, newest first."""
        with self._lock:
            rows = {v: (v, "AVAILABLE", "OK", "") for v in self._servables}
        for v, (message, _, _) in self._failures.items():
            rows.setdefault(v, (v, "END", "UNKNOWN", message))
        if version is not None:
            if version not in rows:
                raise ServingError(
                    "NOT_FOUND", f"Could not find version {version} of model {self.config.name}"
                )
            return [rows[version]]
        if not rows:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {self.config.name}")
        return [rows[v] for v in sorted(rows, reverse=True)]

    @property
    def ready(self) -> bool:
        with self._lock:
            return bool(self._servables)


class ModelManager:
    def __init__(self, configs: list[ModelConfig], poll_seconds: float, warmup: bool = True):
        self.models = {c.name: ManagedModel(c, warmup) for c in configs}
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def model(self, name: str) -> ManagedModel:
        if name not in self.models:
            raise servable_not_found(name)
        return self.models[name]

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        if name not in self.models:
            raise servable_not_found(name, version, label)
        return self.models[name].get(version, label)

    def sync(self) -> None:
        for model in self.models.values():
            model.sync()

    def wait_until_ready(self) -> bool:
        """Load the initial versions (ports open only after this, as TF Serving does)."""
        while not self._stop.is_set():
            self.sync()
            if all(m.ready for m in self.models.values()):
                return True
            self._stop.wait(max(self.poll_seconds, 0.5))
        return False

    def start_polling(self) -> None:
        if self.poll_seconds <= 0:  # TF Serving: 0 or less disables polling after startup
            return
        self._thread = threading.Thread(target=self._poll, name="version-poller", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.sync()
            except Exception:  # keep polling whatever one scan hit
                log.exception("version poll failed")

    def stop(self) -> None:
        self._stop.set()
