"""Benchmarks of tenuto against DBOS Transact on identical workloads (issue 6).

Run ``python -m bench --backend sqlite|postgres|both [--quick] [--only a,b]`` from the
repository root; see ``bench/README.md``.
"""
