"""Benchmarks: what a step, a run, a boot and a resume cost, each next to its floor.

`python -m bench [--quick] [--out FILE] [--only browser|cpython]` prints one JSON
document and writes it to bench/results/latest.json.
"""
