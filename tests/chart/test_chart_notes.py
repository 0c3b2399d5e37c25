"""NOTES.txt prints the exact curl for what was installed."""

from __future__ import annotations

from chart_render import ROOT, run_helm


def notes(*args: str) -> str:
    out = run_helm("install", "serving", ".", "--namespace", "ml", "--dry-run=client", *args).stdout
    return out[out.index("NOTES:") :]


def test_without_ingress_notes_port_forward_the_gateway_service_and_curl_it():
    text = notes()
    assert "kubectl -n ml port-forward service/serving-gateway 9696:80" in text
    assert "curl -X POST http://localhost:9696/predict" in text
    assert "helm test serving -n ml" in text


def test_with_tls_ingress_notes_curl_the_https_host():
    text = notes("--values", str(ROOT / "ci" / "07-ingress-tls-values.yaml"))
    assert "curl -X POST https://classify.example.com/predict" in text
    assert "port-forward" not in text


def test_notes_show_the_one_flag_model_upgrade():
    assert "helm upgrade serving . -n ml --reuse-values --set global.model.version=<N>" in notes()


def test_url_source_notes_warn_that_a_version_bump_needs_the_new_archive():
    text = notes("--values", str(ROOT / "ci" / "04-url-download-values.yaml"))
    assert "version 2 (url source)" in text
    assert "give the new version's url and sha256 in the same upgrade" in text


def test_pinned_model_image_notes_warn_that_a_version_bump_needs_the_new_image():
    text = notes("--values", str(ROOT / "ci" / "05-model-image-values.yaml"))
    assert "The model image is pinned (sha256:4f53cda18c2b" in text
    assert "url and sha256" not in notes()


def test_timestamp_version_shows_as_digits_in_the_notes():
    assert "version 1700000000 (image source)" in notes("--set-json", "global.model.version=1700000000")
