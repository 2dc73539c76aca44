"""benchmark.py: latency and throughput of any Backend over a fixed prompt set (the seed's fields first)."""
from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from typing import Any

from .backend import Backend, BackendInfo, InferenceResult


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it (as g2c's C++)."""
    if not values:
        raise ValueError("percentile of an empty list")
    if not 0 < p <= 100:
        raise ValueError(f"percentile p must be in (0, 100], got {p}")
    s = sorted(values)
    rank = min(max(math.ceil(p * len(s) / 100.0 - 1e-9), 1), len(s))
    return s[rank - 1]


@dataclass
class BenchmarkResult:
    backend: BackendInfo
    n: int
    latency_ms_total: float
    latency_ms_mean: float
    latency_ms_p50: float
    latency_ms_p90: float
    completion_tokens_total: int | None
    tokens_per_second_overall: float | None
    per_request_latency_ms: list[float]
    per_request_tokens_per_second: list[float | None]
    results: list[InferenceResult] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    # g2c's extras.
    latency_ms_p99: float = 0.0
    wall_ms: float = 0.0


def benchmark(backend: Backend, prompts: list[str], *, max_new_tokens: int = 64, temperature: float = 1.0,
              top_k: int | None = None, top_p: float | None = None,
              metadata: dict[str, Any] | None = None) -> BenchmarkResult:
    """Runs every prompt once, in order, with the same sampling settings (warm up before calling)."""
    if not prompts:
        raise ValueError("benchmark needs at least one prompt")
    results: list[InferenceResult] = []
    t0 = time.perf_counter()
    for p in prompts:
        results.append(backend.complete(p, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                                        top_p=top_p))
    wall_ms = (time.perf_counter() - t0) * 1000.0
    lat = [r.latency_ms for r in results]
    total = sum(lat)
    counts = [r.completion_tokens for r in results]
    tokens_total = None if any(c is None for c in counts) else sum(counts)
    meta = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p,
            "machine": platform.machine(), "python": platform.python_version()}
    meta.update(metadata or {})
    return BenchmarkResult(
        backend=backend.info, n=len(results), latency_ms_total=total, latency_ms_mean=total / len(results),
        latency_ms_p50=percentile(lat, 50), latency_ms_p90=percentile(lat, 90),
        completion_tokens_total=tokens_total,
        tokens_per_second_overall=(tokens_total / (total / 1000.0)) if tokens_total is not None and total > 0
        else None,
        per_request_latency_ms=lat, per_request_tokens_per_second=[r.tokens_per_second for r in results],
        results=results, metadata=meta, latency_ms_p99=percentile(lat, 99), wall_ms=wall_ms)
