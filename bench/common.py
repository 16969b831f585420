"""Shared helpers: synthetic suites, percentiles, the machine, and the result table."""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent.parent / "bench-results.json"


def heavy_tailed_suite(n: int, seed: int = 42) -> dict[str, float]:
    """``n`` test durations in seconds: log-normal (median 0.3 s, sigma 1.2) plus a 1% Pareto tail.

    Real suites look like this: most tests take well under a second, a few
    integration tests take minutes. Seeded: every run sees the same suite.
    """
    rng = random.Random(seed)
    durations = {}
    for i in range(n):
        d = rng.lognormvariate(-1.2, 1.2)
        if rng.random() < 0.01:
            d += 5 * rng.paretovariate(1.5)
        durations[f"lp.tests.test_{i:05d}"] = round(min(d, 600.0), 4)
    return durations


def noisy(durations: dict[str, float], spread: float = 0.1, seed: int = 7) -> dict[str, float]:
    """The same suite as measured by an earlier run: every duration off by up to ±spread."""
    rng = random.Random(seed)
    return {t: d * (1 + rng.uniform(-spread, spread)) for t, d in durations.items()}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, Any]:
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "memory_mib": mem,
            "platform": platform.platform()}


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells[1:]]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def save(section: str, data: Any) -> None:
    found = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    found[section] = data
    found["machine"] = machine()
    RESULTS.write_text(json.dumps(found, indent=2))
