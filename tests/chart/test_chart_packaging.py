"""The packaged chart holds chart files only, stays small, and loads each subchart once."""

from __future__ import annotations

import os
import pathlib
import shutil
import tarfile

import pytest
import yaml
from chart_render import ROOT, render, run_helm

MAX_PACKAGE_BYTES = 1024 * 1024
ALLOWED_TOP_LEVEL = {
    "Chart.yaml",
    "Chart.lock",
    "values.yaml",
    "values.schema.json",
    "README.md",
    "templates",
    "charts",
}
SUBCHARTS = {"gateway", "model-server"}
LIBRARY = "common"  # the library chart; each subchart's charts/common links to charts/common


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("package")
    run_helm("package", ".", "--destination", str(out))
    (archive,) = out.glob("*.tgz")
    return archive


@pytest.fixture(scope="module")
def packaged_files(package) -> list[str]:
    with tarfile.open(package) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    assert all(n.startswith("keras-serving/") for n in names)
    return [n.removeprefix("keras-serving/") for n in names]


def test_package_holds_only_chart_files(packaged_files):
    top_level = {name.split("/", 1)[0] for name in packaged_files}
    assert top_level <= ALLOWED_TOP_LEVEL, f"non-chart files packaged: {top_level - ALLOWED_TOP_LEVEL}"
    for source in (
        "gateway/",
        "model/",
        "scripts/",
        "tests/",
        "bench/",
        "samples/",
        "docs/",
        "ci/",
        ".venv/",
        ".tools/",
        ".git/",
    ):
        assert not any(n.startswith(source) for n in packaged_files), source
    for stray in ("conftest.py", "pytest.ini", "Makefile", "compose.yaml", ".gitignore"):
        assert stray not in packaged_files


def test_package_contains_every_chart_file_in_the_repo(packaged_files):
    expected = {"Chart.yaml", "Chart.lock", "values.yaml", "values.schema.json", "README.md"}
    for folder in ("templates", "charts"):
        # Helm follows the subcharts' links to the library chart, so this walk does too.
        for dirpath, _, files in os.walk(ROOT / folder, followlinks=True):
            expected |= {(pathlib.Path(dirpath) / f).relative_to(ROOT).as_posix() for f in files}
    assert expected == set(packaged_files)


def test_package_stays_under_one_mebibyte(package):
    assert package.stat().st_size < MAX_PACKAGE_BYTES


def test_subcharts_are_packaged_unpacked_and_only_once(packaged_files):
    assert not [n for n in packaged_files if n.startswith("charts/") and n.endswith(".tgz")]
    chart_files = [n for n in packaged_files if n.startswith("charts/") and n.endswith("/Chart.yaml")]
    libraries = {f"charts/{LIBRARY}/Chart.yaml"} | {
        f"charts/{name}/charts/{LIBRARY}/Chart.yaml" for name in SUBCHARTS
    }
    assert sorted(chart_files) == sorted({f"charts/{name}/Chart.yaml" for name in SUBCHARTS} | libraries)


def test_every_copy_of_the_library_chart_is_the_same_chart(package):
    # Each subchart carries the library so that it renders on its own; inside the umbrella the
    # copies define the same templates, so which one Helm reads last cannot matter.
    with tarfile.open(package) as tar:
        copies = {}
        for member in tar.getmembers():
            parts = member.name.split(f"/{LIBRARY}/", 1)
            if member.isfile() and len(parts) == 2 and parts[0].endswith("charts"):
                copies.setdefault(parts[0], {})[parts[1]] = tar.extractfile(member).read()
    assert len(copies) == 1 + len(SUBCHARTS)
    first, *others = copies.values()
    assert all(other == first for other in others)


def test_each_subchart_renders_its_objects_exactly_once(default_objects):
    names = [f"{o['kind']}/{o['metadata']['name']}" for o in default_objects]
    assert len(names) == len(set(names))
    assert "Deployment/serving-gateway" in names and "Deployment/serving-model-server" in names


def test_dependency_list_reports_every_subchart_present():
    # Local subcharts without a repository show as "unpacked" (a directory in charts/, as
    # declared); "missing" or "wrong version" would mean Chart.yaml and charts/ disagree.
    proc = run_helm("dependency", "list", ".")
    rows = [line.split() for line in proc.stdout.splitlines()[1:] if line.strip()]
    assert {row[0]: row[-1] for row in rows} == {name: "unpacked" for name in SUBCHARTS | {LIBRARY}}
    for name in SUBCHARTS:
        proc = run_helm("dependency", "list", f"charts/{name}")
        rows = [line.split() for line in proc.stdout.splitlines()[1:] if line.strip()]
        assert {row[0]: row[-1] for row in rows} == {LIBRARY: "unpacked"}


def test_chart_lock_matches_chart_yaml_dependencies():
    chart = yaml.safe_load((ROOT / "Chart.yaml").read_text())
    lock = yaml.safe_load((ROOT / "Chart.lock").read_text())
    declared = {(d["name"], d["version"], d.get("repository", "")) for d in chart["dependencies"]}
    locked = {(d["name"], d["version"], d["repository"]) for d in lock["dependencies"]}
    assert declared == locked


def test_stray_subchart_archive_is_left_out_of_the_package(tmp_path):
    # `helm dependency build` with a file:// repository would drop charts/<name>-<version>.tgz
    # next to the directory: two copies of the subchart in the package and the release.
    copy = tmp_path / "chart"
    copy.mkdir()
    for name in ALLOWED_TOP_LEVEL | {".helmignore"}:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy / name)
    run_helm("package", str(copy / "charts" / "gateway"), "--destination", str(copy / "charts"))
    assert (copy / "charts" / "gateway-0.1.0.tgz").exists()
    out = tmp_path / "out"
    run_helm("package", str(copy), "--destination", str(out))
    (archive,) = out.glob("*.tgz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "keras-serving/charts/gateway/Chart.yaml" in names
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"subchart loaded twice (directory and archive): {duplicates[:3]}"


def test_rendered_chart_is_the_same_from_the_package_and_the_repo(package, tmp_path):
    with tarfile.open(package) as tar:
        tar.extractall(tmp_path, filter="data")
    from_package = run_helm("template", "serving", str(tmp_path / "keras-serving")).stdout
    from_repo = run_helm("template", "serving", ".").stdout
    assert from_package == from_repo
    assert render()  # the repo render used by the other tests works too
