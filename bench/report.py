"""results dict -> bench/results.md (tables, ratios against the targets), bench/results.png and
the READMEs' summary block (bench/summary.py)."""

from __future__ import annotations

import json
import os
import pathlib

from bench.figures import (
    CASE_TITLES,
    FLOOR,
    GOAL_CPU,
    GOAL_PEAK,
    GOAL_PHONE_PREP,
    GOAL_WEB_FLOOR,
    better_for_cpu,
    better_for_peak,
    call_floor,
    cpu_per_request,
    peak,
    pipeline_floor,
    web_stack_floor,
)
from bench.run import BASELINES, GATEWAYS, OURS, OURS_FLOAT32, PIPELINE_FLOOR, WEB_FLOOR
from bench.summary import replace_block, summary


def targets(result: dict) -> list[dict]:
    prep, tp = result["preprocessing"], result["throughput"]
    rows = []
    phone_ratio = prep["phone"][OURS]["median_ms"] / prep["phone"][FLOOR]["median_ms"]
    rows.append(
        {
            "target": "phone photo: ours preprocessing+serialization vs DCT-scaled decode floor",
            "goal": f"≤ {GOAL_PHONE_PREP:g}×",
            "measured": phone_ratio,
            "met": phone_ratio <= GOAL_PHONE_PREP,
        }
    )
    for case, goal in GOAL_PEAK.items():
        best = better_for_peak(tp, case)
        ratio = peak(tp, case, OURS) / peak(tp, case, best)
        rows.append(
            {
                "target": f"{CASE_TITLES[case]}: ours peak throughput vs better baseline ({best})",
                "goal": f"≥ {goal:g}×",
                "measured": ratio,
                "met": ratio >= goal,
            }
        )
        if case == "dataset":
            rows.append(
                {
                    "target": f"dataset JPEG: {OURS_FLOAT32} peak throughput vs better baseline "
                    f"({best}) (information: the same gateway in front of a float32 model like "
                    "the lesson's)",
                    "goal": "—",
                    "measured": peak(tp, case, OURS_FLOAT32) / peak(tp, case, best),
                    "met": None,
                }
            )
    tb = result["tensor_bytes"]
    ratio = tb["baseline (float32)"]["payload_bytes"] / tb["ours (uint8)"]["payload_bytes"]
    rows.append(
        {
            "target": "uint8 signature: tensor bytes per image vs float32",
            "goal": "≥ 4×",
            "measured": ratio,
            "met": ratio >= 4.0,
        }
    )
    for case, goal in GOAL_CPU.items():
        best = better_for_cpu(tp, case)
        ratio = cpu_per_request(tp, case, OURS) / cpu_per_request(tp, case, best)
        rows.append(
            {
                "target": f"{CASE_TITLES[case]}: gateway CPU per request, ours ÷ better baseline ({best})"
                + ("" if goal else " (information)"),
                "goal": f"≤ {goal:g}×" if goal else "—",
                "measured": ratio,
                "met": ratio <= goal if goal else None,
            }
        )
    floor = web_stack_floor(result)
    rows.append(
        {
            "target": "dataset JPEG: gateway CPU per request ÷ (decode floor + Flask/waitress floor) "
            f"= {cpu_per_request(tp, 'dataset', OURS):.2f} ÷ ({floor['decode_ms']:.2f} + {floor['web_ms']:.2f}) ms",
            "goal": f"≤ {GOAL_WEB_FLOOR:g}×",
            "measured": floor["ratio"],
            "met": floor["ratio"] <= GOAL_WEB_FLOOR,
        }
    )
    calls = call_floor(result)
    rows.append(
        {
            "target": "dataset JPEG: gateway CPU per request ÷ (decode + Flask/waitress + image fetch "
            f"+ gRPC Predict floors) = {cpu_per_request(tp, 'dataset', OURS):.2f} ÷ ({calls['decode_ms']:.2f} "
            f"+ {calls['web_ms']:.2f} + {calls['fetch_ms']:.2f} + {calls['grpc_ms']:.2f}) ms (information: "
            "the two calls a URL prediction makes, in aiohttp and grpc.aio alone; the rest is the gateway's own code)",
            "goal": "—",
            "measured": calls["ratio"],
            "met": None,
        }
    )
    path = pipeline_floor(result)
    rows += [
        {
            "target": "dataset JPEG: gateway CPU per request ÷ the same request path in its libraries "
            f"alone = {path['ours_ms']:.2f} ÷ {path['floor_ms']:.2f} ms (information: aiohttp server and "
            "client, the gateway's decode and tensor encoding, grpc.aio, measured beside ours; the rest "
            "is validation, SSRF checks, deadlines, limits, request ids, logs and metrics)",
            "goal": "—",
            "measured": path["ours_ratio"],
            "met": None,
        },
        {
            "target": "dataset JPEG: that library-only request path's CPU per request ÷ better "
            "baseline's (information: the best a gateway on these libraries could reach here)",
            "goal": "—",
            "measured": path["baseline_ratio"],
            "met": None,
        },
        {
            "target": "dataset JPEG: that library-only request path's CPU per request ÷ (decode floor + "
            f"Flask/waitress floor) = {path['floor_ms']:.2f} ÷ ({floor['decode_ms']:.2f} + {floor['web_ms']:.2f}) ms "
            "(information: the web-floor goal applied to the libraries alone)",
            "goal": "—",
            "measured": path["web_floor_ratio"],
            "met": None,
        },
        {
            "target": "dataset JPEG: that library-only request path's peak throughput ÷ better baseline's "
            "(information: the peak-throughput goal applied to the libraries alone, on the same rig)",
            "goal": "—",
            "measured": path["peak_ratio"],
            "met": None,
        },
    ]
    spread = result["spread"][OURS]["ratio"]
    rows.append(
        {
            "target": "two model-server replicas: max/min requests (ours)",
            "goal": "≤ 1.2",
            "measured": spread,
            "met": spread is not None and spread <= 1.2,
        }
    )
    return rows


def _fmt_ratio(value) -> str:
    return "∞ (one replica got nothing)" if value is None else f"{value:.2f}×"


def markdown(result: dict) -> str:
    m, cfg = result["machine"], result["config"]
    lines = [
        "# Benchmark results: keras-serving gateway vs the lesson's gateway",
        "",
        f"Generated by `make bench` (`python -m bench`) on {result['finished']}, one run of "
        f"{result['duration_s'] / 60:.1f} min; commit {m['commit']}. Every figure below comes "
        "from this one run: baseline and ours alternate within each repetition, the order "
        "rotates between repetitions, and each cell is the median of the repetitions.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; {m['os']}; Python {m['python']}",
        f"- Load average (1/5/15 min) before: {_load(result['load_before'])}, after: "
        f"{_load(result['load_after'])} — the bench itself keeps ~2 cores busy; a 1-min load "
        "well above 2 before the run means other work shared the CPU.",
        "- " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        f"- {m['nginx']}; {m['wrk']}",
        f"- Settings: {cfg['reps']} repetitions, {cfg['seconds']:g} s per load run, "
        f"concurrencies {', '.join(map(str, cfg['concurrencies']))}, THREADS={cfg['threads']} "
        "for ours and the baseline's waitress; gunicorn with its defaults (1 sync worker).",
        "",
        "## Targets",
        "",
        "| target | goal | measured | met |",
        "| --- | --- | --- | --- |",
    ]
    for row in targets(result):
        verdict = "—" if row["met"] is None else "yes" if row["met"] else "**no**"
        lines.append(f"| {row['target']} | {row['goal']} | {_fmt_ratio(row['measured'])} | {verdict} |")
    lines += ["", "## Images", "", "| case | file | size | bytes |", "| --- | --- | --- | --- |"]
    for case, facts in result["images"].items():
        lines.append(
            f"| {CASE_TITLES[case]} | {facts['file']} | {facts['width']}×{facts['height']}"
            f" | {facts['bytes']:,} |"
        )
    lines += _preprocessing_table(result) + _throughput_tables(result)
    lines += _bytes_table(result) + _spread_table(result) + _method()
    return "\n".join(lines) + "\n"


def _load(values) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _preprocessing_table(result: dict) -> list[str]:
    prep = result["preprocessing"]
    lines = [
        "",
        "## 1. Preprocessing + request serialization per image (ms, in-process)",
        "",
        "JPEG bytes → serialized PredictRequest, one thread, no network. Ratio: against the "
        "DCT-scaled decode floor.",
        "",
        "| pipeline | " + " | ".join(f"{CASE_TITLES[c]} ms | ×floor" for c in prep) + " |",
        "| --- |" + " --- | --- |" * len(prep),
    ]
    for name in next(iter(prep.values())):
        cells = []
        for case in prep:
            ms = prep[case][name]["median_ms"]
            cells.append(f"{ms:.2f} | {ms / prep[case][FLOOR]['median_ms']:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _throughput_tables(result: dict) -> list[str]:
    lines = ["", '## 2. Gateway throughput and latency (wrk, POST {"url": ...})', ""]
    for case, by_gateway in result["throughput"].items():
        concurrencies = list(by_gateway[OURS])
        lines += [
            f"### {CASE_TITLES[case]}",
            "",
            "| gateway | "
            + " | ".join(f"c={c} req/s | p50 / p99 ms | CPU ms/req" for c in concurrencies)
            + " | errors |",
            "| --- |" + " --- | --- | --- |" * len(concurrencies) + " --- |",
        ]
        for name in GATEWAYS:
            cells = [
                f"{v['rps']:.1f} | {v['p50_ms']:.0f} / {v['p99_ms']:.0f} | {v['cpu_ms']:.1f}"
                for v in by_gateway[name].values()
            ]
            errors = sum(v["errors"] for v in by_gateway[name].values())
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {errors} |")
        for ours in (OURS, OURS_FLOAT32):
            ratios = []
            for c in concurrencies:
                best = max(by_gateway[b][c]["rps"] for b in BASELINES)
                ratios.append(f"{by_gateway[ours][c]['rps'] / best:.2f}× |  | ")
            lines.append(f"| {ours} ÷ better baseline (req/s) | " + " | ".join(ratios) + " |")
        if case == "dataset":
            for key, title in (
                ("web_floor", f"{WEB_FLOOR} (no fetch, decode or gRPC)"),
                ("pipeline_floor", f"{PIPELINE_FLOOR} (bench/pipeline_floor.py)"),
            ):
                floor = result[key]
                cells = [f"{floor[c]['rps']:.1f} |  | {floor[c]['cpu_ms']:.2f}" for c in concurrencies]
                lines.append(f"| {title} | " + " | ".join(cells) + " | 0 |")
        lines.append("")
    return lines + _rig_table(result)


def _rig_table(result: dict) -> list[str]:
    """Where each request's CPU goes on this machine, and the throughput that allows at most."""
    tp, cores = result["throughput"], result["machine"]["cores"]
    lines = [
        "## 2b. CPU per request across the whole rig",
        "",
        "Everything runs on the same cores, so requests/s is bounded by the CPU each request "
        "costs all processes together: gateway + the model server it calls + nginx (wrk adds "
        f"~0.1 ms). Ceiling = {cores} cores × 1000 ÷ total ms. Medians over the concurrencies.",
        "",
        "| case | gateway | gateway CPU ms | model server CPU ms | nginx CPU ms | total ms "
        "| ceiling req/s | measured peak req/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in tp:
        for name in GATEWAYS:
            parts = [
                cpu_per_request(tp, case, name, key) for key in ("cpu_ms", "model_cpu_ms", "nginx_cpu_ms")
            ]
            total = sum(parts)
            lines.append(
                f"| {CASE_TITLES[case]} | {name} | "
                + " | ".join(f"{v:.2f}" for v in parts)
                + f" | {total:.2f} | {cores * 1000 / total:.0f} | {peak(tp, case, name):.0f} |"
            )
    return lines + [""]


def _bytes_table(result: dict) -> list[str]:
    tb = result["tensor_bytes"]
    base = tb["baseline (float32)"]["payload_bytes"]
    lines = [
        "## 3. Tensor bytes per request to the model server",
        "",
        "Counted by the model server on the requests it received (dataset JPEG).",
        "",
        "| sender | tensor payload bytes | input TensorProto bytes | whole request bytes | "
        "baseline ÷ this (payload) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, v in tb.items():
        lines.append(
            f"| {label} | {v['payload_bytes']:,} | {v['input_bytes']:,} | "
            f"{v['request_bytes']:,} | {base / v['payload_bytes']:.2f}× |"
        )
    return lines + [""]


def _spread_table(result: dict) -> list[str]:
    lines = [
        "## 4. Spread over two model-server replicas behind one target",
        "",
        "| gateway | requests to replica A | replica B | max/min |",
        "| --- | --- | --- | --- |",
    ]
    for name, v in result["spread"].items():
        a, b = v["counts"]
        lines.append(f"| {name} | {a:,} | {b:,} | {_fmt_ratio(v['ratio'])} |")
    return lines + [""]


def _method() -> list[str]:
    return pathlib.Path(__file__).with_name("METHOD.md").read_text().splitlines()


def chart(result: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    prep = result["preprocessing"]
    names = list(next(iter(prep.values())))
    ax = axes[0][0]
    width = 0.8 / len(prep)
    for i, case in enumerate(prep):
        ys = [j + i * width for j in range(len(names))]
        ax.barh(ys, [prep[case][n]["median_ms"] for n in names], height=width, label=CASE_TITLES[case])
    ax.set_yticks([j + width / 2 for j in range(len(names))], names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("ms per image (log)")
    ax.set_title("1. preprocessing + serialization")
    ax.legend(fontsize=8)
    tp = result["throughput"]
    for ax, case in zip((axes[0][1], axes[0][2]), tp):
        for name in GATEWAYS:
            series = tp[case][name]
            ax.plot([int(c) for c in series], [v["rps"] for v in series.values()], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel("requests/s")
        ax.set_ylim(bottom=0)
        ax.set_title(f"2. throughput, {CASE_TITLES[case]}")
        ax.legend(fontsize=8)
    ax = axes[1][0]
    width = 0.8 / len(GATEWAYS)
    for i, name in enumerate(GATEWAYS):
        ax.bar(
            [j + i * width for j in range(len(tp))],
            [cpu_per_request(tp, case, name) for case in tp],
            width=width,
            label=name,
        )
    ax.set_xticks([j + width for j in range(len(tp))], [CASE_TITLES[c] for c in tp])
    ax.set_ylabel("gateway CPU ms per request")
    ax.set_title("2. CPU per request (median over concurrencies)")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    tb = result["tensor_bytes"]
    ax.bar(list(tb), [v["payload_bytes"] / 1024 for v in tb.values()], color="tab:gray")
    ax.set_ylabel("tensor KiB per request")
    ax.set_title("3. tensor bytes to the model server")
    ax.tick_params(axis="x", labelsize=8)
    ax = axes[1][2]
    spread = result["spread"]
    for i, replica in enumerate("AB"):
        ax.bar(
            [j + i * 0.4 for j in range(len(spread))],
            [v["counts"][i] for v in spread.values()],
            width=0.4,
            label=f"replica {replica}",
        )
    ax.set_xticks([j + 0.2 for j in range(len(spread))], list(spread))
    ax.set_ylabel("Predict calls served")
    ax.set_title("4. two model-server replicas, one target")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"keras-serving bench — {result['machine']['cpu']}, {result['machine']['cores']} "
        f"cores, {result['finished']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write(result: dict, out: pathlib.Path, readmes: tuple[pathlib.Path, ...] = ()) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "results.md").write_text(markdown(result))
    chart(result, out / "results.png")
    for readme in readmes:
        link = os.path.relpath(out / "results.md", readme.parent)
        readme.write_text(replace_block(readme.read_text(), summary(result, link)))
