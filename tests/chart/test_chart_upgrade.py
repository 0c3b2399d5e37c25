"""Upgrade semantics from two renders: what a values change rolls, and what it leaves alone."""

from __future__ import annotations

from chart_render import GATEWAY, MODEL_SERVER, REGISTRY, find, render


def by_key(objects: list[dict]) -> dict[str, dict]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


def config_checksum(objects: list[dict], deployment: str) -> str:
    return find(objects, "Deployment", deployment)["spec"]["template"]["metadata"]["annotations"][
        "checksum/config"
    ]


def changed_objects(before: list[dict], after: list[dict]) -> set[str]:
    old, new = by_key(before), by_key(after)
    assert old.keys() == new.keys()
    return {key for key in old if old[key] != new[key]}


def test_new_model_version_changes_only_the_model_server_pod_template():
    before = render(sets={"global.model.version": 1})
    after = render(sets={"global.model.version": 2})
    assert changed_objects(before, after) == {f"Deployment/{MODEL_SERVER}"}
    old, new = find(before, "Deployment", MODEL_SERVER), find(after, "Deployment", MODEL_SERVER)
    assert old["spec"]["template"] != new["spec"]["template"], "no pod template change, no rollout"
    old["spec"].pop("template"), new["spec"].pop("template")
    assert old == new


def test_new_model_version_leaves_the_gateway_deployment_and_config_identical():
    before = render(sets={"global.model.version": 1})
    after = render(sets={"global.model.version": 7})
    for kind in ("Deployment", "ConfigMap", "Service"):
        assert find(before, kind, GATEWAY) == find(after, kind, GATEWAY)


def test_new_model_version_loads_the_new_version_directory():
    after = render(sets={"global.model.version": 2})
    init = find(after, "Deployment", MODEL_SERVER)["spec"]["template"]["spec"]["initContainers"][0]
    assert init["image"] == f"{REGISTRY}/clothing-model:2"
    assert init["args"][-1] == "/models/clothing-model/2"


def test_new_model_version_on_a_pvc_mounts_only_that_version():
    pvc = {"global.model.source.type": "pvc", "global.model.source.pvc.existingClaim": "models"}
    before = render(sets={**pvc, "global.model.version": 1})
    after = render(sets={**pvc, "global.model.version": 2})
    assert changed_objects(before, after) == {f"Deployment/{MODEL_SERVER}"}
    mount = find(after, "Deployment", MODEL_SERVER)["spec"]["template"]["spec"]["containers"][0][
        "volumeMounts"
    ][0]
    assert mount == {
        "name": "models",
        "mountPath": "/models/clothing-model/2",
        "subPath": "clothing-model/2",
        "readOnly": True,
    }


def test_gateway_replica_change_touches_only_the_gateway_deployment():
    before = render(sets={"gateway.replicaCount": 1})
    after = render(sets={"gateway.replicaCount": 5})
    assert changed_objects(before, after) == {f"Deployment/{GATEWAY}"}
    assert find(after, "Deployment", GATEWAY)["spec"]["replicas"] == 5


def test_gateway_config_change_rolls_the_gateway_through_its_checksum():
    before = render()
    after = render(sets={"gateway.config.logLevel": "DEBUG"})
    assert changed_objects(before, after) == {f"Deployment/{GATEWAY}", f"ConfigMap/{GATEWAY}"}
    assert config_checksum(before, GATEWAY) != config_checksum(after, GATEWAY)


def test_batching_change_rolls_the_model_server_through_its_checksum():
    before = render(sets={"modelServer.batching.enabled": "true"})
    after = render(sets={"modelServer.batching.enabled": "true", "modelServer.batching.maxBatchSize": 64})
    assert changed_objects(before, after) == {f"Deployment/{MODEL_SERVER}", f"ConfigMap/{MODEL_SERVER}"}
    assert config_checksum(before, MODEL_SERVER) != config_checksum(after, MODEL_SERVER)
