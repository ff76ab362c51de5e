"""The benchmarks of issue 5: `infra/local/bench` runs `python -m infra.bench.run` (see run.py)."""
