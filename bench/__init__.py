"""Benchmarks: the keras-serving gateway against the lesson's gateway, side by side.

`python -m bench` (or `make bench`) runs every figure in one run and writes bench/results.md and
bench/results.png. See bench/results.md for what each figure measures.
"""
