"""The benchmark figures the READMEs quote are the ones the last `make bench` run measured."""

from __future__ import annotations

import json
import pathlib

import pytest

from bench import summary

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.unit
@pytest.mark.parametrize(
    "readme, link", [(ROOT / "README.md", "bench/results.md"), (ROOT / "bench" / "README.md", "results.md")]
)
def test_readmes_quote_the_last_runs_figures(readme, link):
    result = json.loads((ROOT / "bench" / "results.json").read_text())
    text = readme.read_text()
    assert summary.replace_block(text, summary.summary(result, link)) == text, (
        f"{readme.relative_to(ROOT)} does not hold the figures of bench/results.json: run `make bench`"
    )


@pytest.mark.unit
def test_a_readme_without_markers_is_an_error():
    with pytest.raises(ValueError, match="found 0"):
        summary.replace_block("no markers here", "table")


@pytest.mark.unit
@pytest.mark.parametrize("inside", ["", "old figures\n| a | b |\n"])
def test_replacing_the_block_keeps_everything_around_it(inside):
    text = f"# Title\n\nbefore\n\n<!-- bench:start -->\n{inside}<!-- bench:end -->\n\nafter\n## More\n"
    replaced = summary.replace_block(text, "| new |")
    assert (
        replaced
        == "# Title\n\nbefore\n\n<!-- bench:start -->\n| new |\n<!-- bench:end -->\n\nafter\n## More\n"
    )
    assert summary.replace_block(replaced, "| new |") == replaced
