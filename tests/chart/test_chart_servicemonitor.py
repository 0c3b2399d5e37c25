"""ServiceMonitors (model server and gateway): rendered only when asked for and when the cluster
has the CRD."""

from __future__ import annotations

from chart_render import GATEWAY, MODEL_SERVER, container, find, render

WANTED = {"modelServer.metrics.serviceMonitor.enabled": "true"}
CRD = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")


def service_monitors(objects):
    return [o for o in objects if o["kind"] == "ServiceMonitor"]


def test_not_rendered_without_the_crd_even_when_enabled():
    assert not service_monitors(render(sets=WANTED))


def test_not_rendered_when_disabled_even_with_the_crd():
    assert not service_monitors(render(extra=CRD))


def test_scrapes_the_model_server_rest_port_at_the_prometheus_path():
    objects = render(
        sets={**WANTED, "modelServer.metrics.serviceMonitor.labels.release": "kube-prometheus"}, extra=CRD
    )
    monitor = find(objects, "ServiceMonitor", MODEL_SERVER)
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/monitoring/prometheus/metrics", "interval": "30s"}
    ]
    service = find(objects, "Service", MODEL_SERVER)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


GATEWAY_WANTED = {"gateway.metrics.serviceMonitor.enabled": "true"}


def test_gateway_monitor_not_rendered_without_the_crd_or_when_disabled():
    assert not service_monitors(render(sets=GATEWAY_WANTED))
    assert not service_monitors(
        render(sets={**GATEWAY_WANTED, "gateway.metrics.enabled": "false"}, extra=CRD)
    )


def test_gateway_monitor_scrapes_metrics_on_the_gateway_port_and_only_the_gateway():
    objects = render(
        sets={**GATEWAY_WANTED, "gateway.metrics.serviceMonitor.labels.release": "kube-prometheus"}, extra=CRD
    )
    (monitor,) = service_monitors(objects)
    assert monitor["metadata"]["name"] == GATEWAY
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {"port": "http", "path": "/metrics", "interval": "30s"}
    # The named Service port leads to the container port the gateway serves /metrics on (PORT).
    selector = monitor["spec"]["selector"]["matchLabels"].items()
    services = [o for o in objects if o["kind"] == "Service" and selector <= o["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in services] == [GATEWAY]
    (service_port,) = [p for p in services[0]["spec"]["ports"] if p["name"] == endpoint["port"]]
    gateway = container(find(objects, "Deployment", GATEWAY), "gateway")
    (target,) = [p for p in gateway["ports"] if p["name"] == service_port["targetPort"]]
    assert str(target["containerPort"]) == find(objects, "ConfigMap", GATEWAY)["data"]["PORT"]


def test_both_monitors_render_side_by_side():
    objects = render(sets={**WANTED, **GATEWAY_WANTED}, extra=CRD)
    assert sorted(m["metadata"]["name"] for m in service_monitors(objects)) == sorted([GATEWAY, MODEL_SERVER])
