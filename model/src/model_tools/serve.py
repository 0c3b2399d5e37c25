"""`model serve`: a development model server speaking TF Serving's gRPC and REST APIs.

It takes TF Serving's own flags (so the chart's container args and the lesson's command line
work unchanged), loads ``<model_base_path>/<version>/`` with TensorFlow, serves the highest
version, picks up new version directories by polling, and opens its ports only once the
initial versions are loaded. Flags it does not implement are accepted and logged.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import re
import signal
import sys
import threading

log = logging.getLogger("model_tools.serve")

# TF Serving flags accepted for command-line compatibility but without effect here.
IGNORED_FLAGS = (
    "enable_batching",
    "batching_parameters_file",
    "allow_version_labels_for_unavailable_models",
    "tensorflow_session_parallelism",
    "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism",
    "rest_api_num_threads",
    "rest_api_timeout_in_ms",
    "grpc_max_threads",
    "enable_signature_method_name_check",
    "model_config_file_poll_wait_seconds",
    "platform_config_file",
    "per_process_gpu_memory_fraction",
    "saved_model_tags",
    "xla_cpu_compilation_enabled",
    "num_load_threads",
    "num_unload_threads",
    "max_num_load_retries",
    "load_retry_interval_micros",
    "ssl_config_file",
    "grpc_socket_path",
    "rest_api_enable_cors_support",
    "flush_filesystem_caches",
    "enable_model_warmup_reuse",
    "num_request_iterations_for_warmup",
    "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model",
    "use_tflite_model",
    "tensorflow_gpu_memory_fraction",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_arguments(parser):
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free port)")
    parser.add_argument(
        "--rest_api_port", type=int, default=8501, help="REST port (0: no REST, as in TF Serving)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="bind address for both ports (not a TF Serving flag; TF Serving always binds every interface)",
    )
    parser.add_argument("--model_name", default="default")
    parser.add_argument("--model_base_path", help="directory holding <version>/ subdirectories")
    parser.add_argument(
        "--model_config_file",
        help="ModelServerConfig text proto (several models, version policies, version labels)",
    )
    parser.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between version directory scans (<= 0: scan only at start)",
    )
    parser.add_argument(
        "--monitoring_config_file",
        help="MonitoringConfig text proto; "
        "prometheus_config { enable: true } exposes metrics on the REST port",
    )
    parser.add_argument(
        "--enable_model_warmup",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests before serving",
    )
    parser.add_argument("--grpc_workers", type=int, default=16, help="gRPC handler threads")
    parser.add_argument(
        "--grpc_channel_arguments",
        type=parse_channel_arguments,
        default=(),
        help="gRPC server arguments as TF Serving takes them: key=value,key=value "
        "(e.g. grpc.max_connection_age_ms=30000)",
    )
    parser.add_argument(
        "--on_sigterm",
        choices=("exit", "ignore"),
        default="exit",
        help="not a TF Serving flag: 'ignore' behaves like TF Serving, which "
        "ignores SIGTERM and serves until it is killed (tensorflow/serving#1853)",
    )
    parser.add_argument(
        "--wait_for_models",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="with no version under a base path yet, wait for one as TF Serving does "
        "(the container image sets it); without it, say what layout was expected and exit",
    )
    parser.add_argument("--log_level", default="INFO")
    for flag in IGNORED_FLAGS:
        parser.add_argument(f"--{flag}", nargs="?", const="true", help=argparse.SUPPRESS)


def parse_channel_arguments(text: str) -> tuple[tuple[str, int | str], ...]:
    """TF Serving's --grpc_channel_arguments: comma-separated key=value pairs, integer values as
    integers (grpc.max_connection_age_ms=30000), anything else as text."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected key=value, got {item!r}")
        value = value.strip()
        pairs.append((key.strip(), int(value) if value.lstrip("-").isdigit() else value))
    return tuple(pairs)


def read_model_configs(args):
    from model_tools.model_manager import ModelConfig

    if args.model_config_file:
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2

        text = pathlib.Path(args.model_config_file).read_text()
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
        configs = []
        for model in config.model_config_list.config:
            policy = model.model_version_policy.WhichOneof("policy_choice") or "latest"
            configs.append(
                ModelConfig(
                    name=model.name,
                    base_path=pathlib.Path(model.base_path),
                    policy=policy,
                    num_latest=model.model_version_policy.latest.num_versions or 1,
                    specific_versions=tuple(model.model_version_policy.specific.versions),
                    version_labels=dict(model.version_labels),
                )
            )
        if not configs:
            raise SystemExit(f"{args.model_config_file}: no model_config_list entries")
        return configs
    if not args.model_base_path:
        raise SystemExit("model serve: give --model_base_path (and --model_name) or --model_config_file")
    return [ModelConfig(name=args.model_name, base_path=pathlib.Path(args.model_base_path))]


def read_prometheus_path(monitoring_config_file: str | None) -> str | None:
    """The metrics path if the MonitoringConfig enables Prometheus (a small text-proto read:
    the tensorflow-serving-api wheel does not ship monitoring_config_pb2)."""
    if not monitoring_config_file:
        return None
    text = pathlib.Path(monitoring_config_file).read_text()
    block = re.search(r"prometheus_config\s*:?\s*\{([^}]*)\}", text)
    if not block or not re.search(r"enable\s*:\s*true", block.group(1)):
        return None
    path = re.search(r"path\s*:\s*[\"']([^\"']+)[\"']", block.group(1))
    return path.group(1) if path else "/monitoring/prometheus/metrics"


def run(args, extra_flags=()) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for flag in IGNORED_FLAGS:
        if getattr(args, flag, None) is not None:
            log.warning(
                "--%s is accepted for TF Serving compatibility but has no effect in model serve", flag
            )
    for flag in extra_flags:
        log.warning("unknown flag %s ignored", flag)
    configs = read_model_configs(args)
    prometheus_path = read_prometheus_path(args.monitoring_config_file)

    stopping = threading.Event()
    if args.on_sigterm == "ignore":
        # What TF Serving does: the kubelet's SIGTERM changes nothing, SIGKILL ends the process
        # when terminationGracePeriodSeconds run out (the chart's drain is built for that).
        signal.signal(signal.SIGTERM, lambda *_: log.info("SIGTERM ignored (--on_sigterm=ignore)"))
    else:
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    from model_tools.model_manager import ModelManager
    from model_tools.serve_grpc import start_grpc
    from model_tools.serve_metrics import ServeMetrics
    from model_tools.serve_rest import start_rest

    if not args.wait_for_models:
        from model_tools.model_manager import list_versions

        empty = [config for config in configs if not list_versions(config.base_path)]
        for config in empty:
            print(
                f"model serve: no version of {config.name} under {config.base_path}: expected "
                f"{config.base_path}/<version>/saved_model.pb, e.g. {config.base_path}/1/saved_model.pb "
                f"(`model convert my.keras --out <dir> --name {config.name}` writes <dir>/{config.name}/1/; "
                "pass that <dir>/<name> as --model_base_path), or --wait_for_models to wait for one",
                file=sys.stderr,
            )
        if empty:
            return 2
    manager = ModelManager(configs, args.file_system_poll_wait_seconds, args.enable_model_warmup)
    threading.Thread(target=lambda: (stopping.wait(), manager.stop()), daemon=True).start()
    if not manager.wait_until_ready():
        return 0  # stopped before any model loaded
    manager.start_polling()
    metrics = ServeMetrics()
    grpc_server, rest_server, rest_port = None, None, 0
    try:
        grpc_server, grpc_port = start_grpc(
            manager, metrics, args.host, args.port, args.grpc_workers, args.grpc_channel_arguments
        )
        log.info("Running gRPC ModelServer at %s:%d ...", args.host, grpc_port)
        if args.rest_api_port:
            rest_server, rest_port = start_rest(
                manager, metrics, args.host, args.rest_api_port, prometheus_path
            )
            log.info("Exporting HTTP/REST API at:%s:%d ...", args.host, rest_port)
    except OSError as exc:  # port in use, bad address: one clear line, exit status 1
        log.error("cannot start: %s", exc)
        manager.stop()
        if grpc_server:
            grpc_server.stop(grace=0)
        return 1
    models = ", ".join(f"{m.config.name} v{m.get().version}" for m in manager.models.values())
    # One line other tools wait for; flush so a parent reading our stdout sees it at once.
    print(
        f"model serve: listening grpc={args.host}:{grpc_port} rest="
        f"{f'{args.host}:{rest_port}' if rest_server else 'off'} models: {models}",
        flush=True,
    )

    stopping.wait()
    log.info("shutting down")
    manager.stop()
    if rest_server:
        rest_server.shutdown()
        rest_server.server_close()
    grpc_server.stop(grace=5).wait()
    return 0


def main(argv=None) -> int:
    """Entry point of the `tensorflow_model_server` wrapper in the model-server-dev image."""
    parser = argparse.ArgumentParser(prog="tensorflow_model_server", description=__doc__)
    add_arguments(parser)
    args, extra = parser.parse_known_args(argv)
    return run(args, extra)


if __name__ == "__main__":
    sys.exit(main())
