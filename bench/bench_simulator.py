"""Simulator throughput -> ``bench/results/simulator.json``.

Times ``simulate()`` for ~1M transactions (default 20,000 cards x 30 days) pinned to
one CPU core, against two baselines timed in the same run on the same core:

* ``numpy_random_rows``: numpy drawing the same number of rows of random numbers
  (15 columns: 11 float, 4 integer): the floor for any vectorised generator;
* ``parquet_write``: writing the simulated frame to Parquet (what ``fraudlens
  simulate --out x.parquet`` adds after simulating).

Timings on a shared machine are noisy (the load average is recorded): compare ratios.

    .venv/bin/python bench/bench_simulator.py              # ~1M rows, 3 repeats
    .venv/bin/python bench/bench_simulator.py --cards 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from host import describe  # noqa: E402  (bench/ is the script's directory)
from rich.console import Console

from features.simulator import simulate

console = Console(stderr=True)


def pin_to_one_core() -> int | None:
    """Run on a single core so that 'rows per second' means per core. Returns the core."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def numpy_rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    floats = rng.random((n, 11))
    ints = rng.integers(0, 1 << 30, (n, 4))
    return np.hstack([floats, ints.astype(np.float64)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "simulator.json")
    args = parser.parse_args()

    core = pin_to_one_core()
    load_before = os.getloadavg()[0]
    console.print(f"simulating {args.cards} cards x {args.days} days, {args.repeat} repeat(s), core {core}")
    simulate(200, 5, args.seed)  # warm imports and first-call allocations
    sim_times, frame = best_of(args.repeat, lambda: simulate(args.cards, args.days, args.seed))
    rows = len(frame)
    console.print(f"  {rows} rows, best {min(sim_times):.2f}s")

    console.print("baseline: numpy random rows")
    np_times, _ = best_of(args.repeat, lambda: numpy_rows(rows, args.seed))
    console.print("baseline: parquet write")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sim.parquet"
        pq_times, _ = best_of(args.repeat, lambda: frame.to_parquet(path, index=False))
        parquet_mb = path.stat().st_size / 1e6

    best = min(sim_times)
    result = {
        "benchmark": "simulator",
        "machine": describe(("numpy", "pandas"), pinned_core=core, load_average_1m_before=round(load_before, 2),
                            load_average_1m_after=round(os.getloadavg()[0], 2)),
        "params": {"n_cards": args.cards, "days": args.days, "seed": args.seed, "repeat": args.repeat},
        "simulate": {
            "rows": rows,
            "seconds_best": round(best, 3),
            "seconds_all": [round(t, 3) for t in sim_times],
            "rows_per_s": int(rows / best),
            "under_one_minute": best < 60,
            "fraud_rate": round(float(frame["is_fraud"].mean()), 5),
            "fraud_rows_by_scenario": frame.loc[frame["is_fraud"] == 1, "fraud_scenario"].value_counts().to_dict(),
            "cards": int(frame["card_id"].nunique()),
            "merchants": int(frame["merchant_id"].nunique()),
        },
        "baselines": {
            "numpy_random_rows": {
                "what": "rng.random((rows, 11)) + rng.integers((rows, 4)), stacked",
                "seconds_best": round(min(np_times), 3),
                "ratio_simulate_to_baseline": round(best / min(np_times), 1),
            },
            "parquet_write": {
                "what": "frame.to_parquet (pyarrow) of the simulated frame",
                "seconds_best": round(min(pq_times), 3),
                "megabytes": round(parquet_mb, 1),
                "ratio_simulate_to_baseline": round(best / min(pq_times), 2),
            },
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print_json(json.dumps(result))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
