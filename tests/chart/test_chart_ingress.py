"""Ingress: networking.k8s.io/v1 to the gateway Service, with className, hosts, TLS, annotations."""
from __future__ import annotations

from chart_render import GATEWAY, ROOT, find, render


def test_no_ingress_by_default(default_objects):
    assert not [o for o in default_objects if o["kind"] == "Ingress"]


def test_ingress_routes_the_host_to_the_gateway_service_with_tls():
    objects = render(ROOT / "ci" / "07-ingress-tls-values.yaml")
    ingress = find(objects, "Ingress", GATEWAY)
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "classify-example-com-tls", "hosts": ["classify.example.com"]}]
    (rule,) = spec["rules"]
    assert rule["host"] == "classify.example.com"
    (path,) = rule["http"]["paths"]
    assert path == {"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": GATEWAY, "port": {"name": "http"}}}}
    assert find(objects, "Service", GATEWAY)["spec"]["ports"][0]["name"] == "http"
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
