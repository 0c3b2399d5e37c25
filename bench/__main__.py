"""`python -m bench`: run every figure once and write results.md, results.png, results.json."""

from __future__ import annotations

import argparse
import pathlib

from bench import report
from bench.run import Config, log, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path(__file__).parent,
        help="where to write results.md/.png/.json (default: bench/)",
    )
    parser.add_argument("--reps", type=int, default=Config.reps)
    parser.add_argument("--seconds", type=int, default=Config.seconds, help="duration of each wrk run")
    parser.add_argument(
        "--quick", action="store_true", help="1 repetition of 2 s runs: checks the harness, figures are rough"
    )
    args = parser.parse_args()
    config = Config(reps=args.reps, seconds=args.seconds)
    if args.quick:
        config = Config(
            reps=1,
            seconds=2,
            concurrencies=(1, 4),
            prep_reps=2,
            prep_iterations={"dataset": 5, "phone": 1},
            bytes_requests=3,
        )
    result = run(config)
    here = pathlib.Path(__file__).parent
    # A run that writes bench/ also updates the figures the READMEs quote; a --out run does not.
    readmes = (here.parent / "README.md", here / "README.md") if args.out.resolve() == here.resolve() else ()
    report.write(result, args.out, readmes)
    log(f"wrote {args.out / 'results.md'} and results.png in {result['duration_s'] / 60:.1f} min")
    for row in report.targets(result):
        verdict = "info" if row["met"] is None else "met " if row["met"] else "MISS"
        log(f"{verdict} {row['target']}: {row['measured']} ({row['goal']})")


if __name__ == "__main__":
    main()
