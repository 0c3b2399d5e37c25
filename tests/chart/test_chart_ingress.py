"""Ingress: networking.k8s.io/v1 to the gateway Service, with className, hosts, TLS, annotations;
only the API routed, under any path prefix the gateway then answers to."""

from __future__ import annotations

from chart_render import GATEWAY, ROOT, container_environment, find, render


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
    # Only the API: /metrics, /healthz and /readyz are not public.
    assert path == {
        "path": "/predict",
        "pathType": "Exact",
        "backend": {"service": {"name": GATEWAY, "port": {"name": "http"}}},
    }
    assert find(objects, "Service", GATEWAY)["spec"]["ports"][0]["name"] == "http"
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"


def test_a_path_prefix_is_routed_and_the_gateway_answers_under_it():
    objects = render(ROOT / "ci" / "07-ingress-tls-values.yaml", sets={"ingress.path": "/clothes/"})
    (path,) = find(objects, "Ingress", GATEWAY)["spec"]["rules"][0]["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/clothes/predict", "Exact")
    env = container_environment(objects, find(objects, "Deployment", GATEWAY), "gateway")
    assert env["URL_PREFIX"] == "/clothes"
    assert (
        container_environment(render(), find(render(), "Deployment", GATEWAY), "gateway")["URL_PREFIX"] == ""
    )


def test_ingress_nginx_body_limit_follows_the_gateways_request_limit():
    # ingress-nginx's default (1 MiB) would refuse uploads the gateway accepts (16 MiB).
    objects = render(sets={"ingress.enabled": "true"})  # className nginx, no annotations
    annotations = find(objects, "Ingress", GATEWAY)["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "16777216"
    # A limit the user wrote wins (the TLS scenario sets 10m).
    mine = find(render(ROOT / "ci" / "07-ingress-tls-values.yaml"), "Ingress", GATEWAY)["metadata"][
        "annotations"
    ]
    assert mine["nginx.ingress.kubernetes.io/proxy-body-size"] == "10m"
    traefik = render(sets={"ingress.enabled": "true", "ingress.className": "traefik"})
    assert "nginx.ingress.kubernetes.io/proxy-body-size" not in (
        find(traefik, "Ingress", GATEWAY)["metadata"].get("annotations") or {}
    )
