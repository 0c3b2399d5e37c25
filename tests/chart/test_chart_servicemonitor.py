"""ServiceMonitor: rendered only when asked for and when the cluster has the CRD."""
from __future__ import annotations

from chart_render import MODEL_SERVER, find, render

WANTED = {"modelServer.metrics.serviceMonitor.enabled": "true"}
CRD = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")


def service_monitors(objects):
    return [o for o in objects if o["kind"] == "ServiceMonitor"]


def test_not_rendered_without_the_crd_even_when_enabled():
    assert not service_monitors(render(sets=WANTED))


def test_not_rendered_when_disabled_even_with_the_crd():
    assert not service_monitors(render(extra=CRD))


def test_scrapes_the_model_server_rest_port_at_the_prometheus_path():
    objects = render(sets={**WANTED, "modelServer.metrics.serviceMonitor.labels.release": "kube-prometheus"}, extra=CRD)
    monitor = find(objects, "ServiceMonitor", MODEL_SERVER)
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/monitoring/prometheus/metrics", "interval": "30s"}]
    service = find(objects, "Service", MODEL_SERVER)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
