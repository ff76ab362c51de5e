"""Timing and summarising.

The machine is shared and noisy, so every figure that is compared with a baseline is measured
*interleaved* with it: one call of each, in an order that rotates every round, so a burst of
someone else's load lands on both sides alike. Ratios are what the benchmark stands on; the
absolute figures only describe this machine at that moment.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was really observed, never an interpolation."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(samples: list[float], unit: str = "Ms", scale: float = 1e3) -> dict[str, Any]:
    """Milliseconds (samples are seconds): the median, p99, mean and the count behind them."""
    return {
        "n": len(samples),
        f"median{unit}": statistics.median(samples) * scale,
        f"p99{unit}": percentile(samples, 0.99) * scale,
        f"mean{unit}": statistics.fmean(samples) * scale,
    }


def microseconds(samples: list[float]) -> dict[str, Any]:
    """The same as `summary`, in microseconds, for calls far below a millisecond."""
    return summary(samples, "Us", 1e6)


def interleaved(calls: Mapping[str, Callable[[], object]], iterations: int, warmup: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each callable, one of each per round, the order rotating every round."""
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for round_number in range(warmup + iterations):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]
            start = clock()
            call()
            elapsed = clock() - start
            if round_number >= warmup:
                samples[name].append(elapsed)
    return samples


def ratio(ours: float, baseline: float) -> float:
    return ours / baseline if baseline > 0 else math.inf


def verdict(value: float, target: float, *, at_least: bool = False) -> dict[str, Any]:
    """`value` against its target: a ratio must stay at or under it (or reach it, `at_least`)."""
    met = value >= target if at_least else value <= target
    return {"ratio": value, "target": target, "targetKind": "min" if at_least else "max", "met": met}
