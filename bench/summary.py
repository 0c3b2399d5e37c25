"""The headline figures of a bench run as a Markdown table, written between the
<!-- bench:start --> and <!-- bench:end --> markers of README.md and bench/README.md."""

from __future__ import annotations

import re

from bench.figures import (
    CASE_TITLES,
    FLOOR,
    GOAL_CPU,
    GOAL_PEAK,
    GOAL_PHONE_PREP,
    GOAL_WEB_FLOOR,
    better_for_cpu,
    better_for_peak,
    cpu_per_request,
    peak,
    web_stack_floor,
)
from bench.run import OURS


def summary(result: dict, results_link: str) -> str:
    """The headline figures, for README.md and bench/README.md (between <!-- bench:start/end -->;
    bench/tests check both hold exactly this for bench/results.json)."""
    tp, prep, m = result["throughput"], result["preprocessing"], result["machine"]
    lines = [
        f"Measured by `make bench` on {result['finished']} (commit {m['commit']}, {m['cpu']}, "
        f"{m['cores']} cores, everything on one machine); the lesson's gateway is the better of its "
        "gunicorn and waitress setups; ours serves the uint8 demo model (`make demo`'s default). "
        f"Full tables: [bench/results.md]({results_link}).",
        "",
        "| figure | lesson's gateway | ours | ratio | target |",
        "| --- | --- | --- | --- | --- |",
    ]

    def verdict(met) -> str:
        return "met" if met else "**missed**"

    for case, goal in GOAL_CPU.items():
        best = better_for_cpu(tp, case)
        base, ours = cpu_per_request(tp, case, best), cpu_per_request(tp, case, OURS)
        target = f"≤ {goal:g}×: {verdict(ours / base <= goal)}" if goal else "—"
        lines.append(
            f"| {CASE_TITLES[case]}: gateway CPU per request | {base:.2f} ms | {ours:.2f} ms "
            f"| {ours / base:.2f}× | {target} |"
        )
    for case in ("dataset", "phone"):
        goal = GOAL_PEAK[case]
        best = better_for_peak(tp, case)
        base, ours = peak(tp, case, best), peak(tp, case, OURS)
        lines.append(
            f"| {CASE_TITLES[case]}: peak throughput | {base:.0f} req/s | {ours:.0f} req/s "
            f"| {ours / base:.2f}× | ≥ {goal:g}×: {verdict(ours / base >= goal)} |"
        )
    phone = prep["phone"][OURS]["median_ms"] / prep["phone"][FLOOR]["median_ms"]
    lines.append(
        f"| phone photo: preprocessing vs DCT-scaled decode alone | {prep['phone']['baseline']['median_ms']:.1f} ms "
        f"| {prep['phone'][OURS]['median_ms']:.1f} ms (floor {prep['phone'][FLOOR]['median_ms']:.1f} ms) "
        f"| {phone:.2f}× the floor | ≤ {GOAL_PHONE_PREP:g}×: {verdict(phone <= GOAL_PHONE_PREP)} |"
    )
    floor = web_stack_floor(result)
    lines.append(
        f"| dataset JPEG: gateway CPU ÷ (decode floor {floor['decode_ms']:.2f} ms + Flask/waitress "
        f"floor {floor['web_ms']:.2f} ms) | — | {cpu_per_request(tp, 'dataset', OURS):.2f} ms | {floor['ratio']:.2f}× "
        f"| ≤ {GOAL_WEB_FLOOR:g}×: {verdict(floor['ratio'] <= GOAL_WEB_FLOOR)} |"
    )
    return "\n".join(lines)


def replace_block(text: str, block: str, marker: str = "bench") -> str:
    """`text` with what stands between its <!-- marker:start --> and <!-- marker:end --> lines
    replaced by `block` (and nothing else touched); ValueError without exactly one such pair."""
    pattern = re.compile(rf"^<!-- {marker}:start -->\n.*?^<!-- {marker}:end -->$", re.S | re.M)
    found = pattern.findall(text)
    if len(found) != 1:
        raise ValueError(
            f"expected one <!-- {marker}:start --> ... <!-- {marker}:end --> block, found {len(found)}"
        )
    replacement = f"<!-- {marker}:start -->\n{block}\n<!-- {marker}:end -->"
    return pattern.sub(lambda _m: replacement, text)
