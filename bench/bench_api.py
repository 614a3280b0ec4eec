"""API benchmark: ``POST /v1/score`` latency at a fixed request rate, over real HTTP.

Measures, in one run and on one machine:

1. p50/p99 latency of ``POST /v1/score`` (one transaction per request) at ``--rate``
   requests/s (default 200) from a load generator in its own process, against
   ``fraudlens``'s app served by uvicorn in another process (SQLite store, memory
   state, the model trained here unless ``--model DIR``);
2. the baseline in the same run: ``GET /healthz`` at the same rate (HTTP + framework
   floor, no auth, no model), and the in-process cost of one ``ScoreService.score``;
3. latency is measured from each request's *scheduled* send time (open loop), so a
   slow server cannot hide its queueing ("coordinated omission").

Writes ``bench/results/api.json``. Run: ``python bench/bench_api.py`` (about a minute
on a 2-core machine, plus ~20 s to train the model unless ``--model DIR`` is given).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from host import describe  # noqa: E402  (bench/ is the script's directory)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(work: Path, registry: Path) -> Any:
    from explain.settings import NarrativeSettings
    from fraudlens.settings import ModelSettings, Settings
    from streaming.settings import StoreSettings

    return Settings(work_dir=work, model=ModelSettings(registry_dir=registry),
                    store=StoreSettings(url=f"sqlite:///{work / 'api.db'}"), narrative=NarrativeSettings(backend="template"))


def _serve(work: str, registry: str, port: int) -> None:
    import logging

    import uvicorn

    from api import ApiSettings, create_app

    logging.disable(logging.INFO)  # the access log would cost more than some requests
    app = create_app(_settings(Path(work), Path(registry)), ApiSettings(port=port))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _load(url: str, method: str, bodies: list[Any], headers: dict[str, str], rate: float, seconds: float,
          out: Any) -> None:
    """Open-loop load: request i is due at start + i / rate; latency counts from that due time."""
    import httpx

    n = int(rate * seconds)
    client = httpx.Client(headers=headers, timeout=30.0, limits=httpx.Limits(max_connections=32))
    for body in bodies[:20]:  # warm the connection pool and the server
        client.request(method, url, json=body)
    start = time.perf_counter() + 0.2

    def one(i: int) -> tuple[float, float, int]:
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        try:
            status = client.request(method, url, json=bodies[i % len(bodies)]).status_code
        except httpx.HTTPError:
            status = 0  # reset or timed out: counted as an error, never dropped from the latencies
        done = time.perf_counter()
        return done - due, done - sent, status

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one, range(n)))
    client.close()
    out.put(results)


def _run_load(ctx: Any, url: str, method: str, bodies: list[Any], headers: dict[str, str], rate: float,
              seconds: float) -> dict[str, Any]:
    queue = ctx.Queue()
    proc = ctx.Process(target=_load, args=(url, method, bodies, headers, rate, seconds, queue))
    proc.start()
    results = queue.get(timeout=seconds * 10 + 120)
    proc.join()
    from_due = np.array([r[0] for r in results]) * 1000
    from_send = np.array([r[1] for r in results]) * 1000
    statuses = [r[2] for r in results]
    return {
        "requests": len(results), "rate_rps": rate, "seconds": seconds,
        "ok": sum(1 for s in statuses if s == 200), "errors": sum(1 for s in statuses if s != 200),
        "connection_errors": sum(1 for s in statuses if s == 0),
        "p50_ms": round(float(np.percentile(from_due, 50)), 3), "p99_ms": round(float(np.percentile(from_due, 99)), 3),
        "max_ms": round(float(from_due.max()), 3),
        "service_p50_ms": round(float(np.percentile(from_send, 50)), 3),
        "service_p99_ms": round(float(np.percentile(from_send, 99)), 3),
    }


def _train(registry: Path) -> str:
    from detection import train
    from detection.registry import ModelRegistry
    from features.pipeline import FeaturePipeline
    from features.simulator import simulate
    from fraudlens.settings import ModelSettings

    frame = simulate(n_cards=300, days=35, seed=7, start="2026-01-01", fraud_rate_scale=3.0)
    bundle = train(frame, train_start=date(2026, 1, 1), train_end=date(2026, 1, 28),
                   pipeline=FeaturePipeline.from_settings(),
                   settings=ModelSettings(seed=5, n_threads=2, max_rounds=150, early_stopping_rounds=20),
                   data_hash="0" * 64, source="simulated")
    ModelRegistry(registry).register(bundle, promote=True)
    return str(bundle.version)


def _records(n: int) -> list[dict[str, Any]]:
    from features.schema import iter_transactions
    from features.simulator import simulate

    frame = simulate(n_cards=500, days=3, seed=99, start="2026-03-01")
    out = []
    for tx in iter_transactions(frame.iloc[:n]):
        record = tx.to_record()
        out.append({k: v for k, v in record.items() if v is not None and k not in ("is_fraud", "label_timestamp")})
    return out


def _in_process(registry: Path, work: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    from api.scoring import ScoreService, resolve_model_path
    from features.schema import Transaction

    settings = _settings(work, registry)
    service = ScoreService.load(resolve_model_path(None, registry), settings.state, settings.narrative)
    txs = [Transaction.from_mapping({**r, "transaction_id": "inproc-" + r["transaction_id"]}) for r in records]
    for tx in txs[:50]:
        service.score([tx])
    times = []
    for tx in txs[50:]:
        started = time.perf_counter()
        service.score([tx])
        times.append((time.perf_counter() - started) * 1000)
    return {"calls": len(times), "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p99_ms": round(float(np.percentile(times, 99)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--model", type=Path, default=None, help="a registry dir with a champion (default: train)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api.json")
    args = parser.parse_args()

    from api.db import setup_tables
    from api.keys import KeyStore, Role
    from streaming.store import SqlAlertStore

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        registry = args.model or work / "models"
        version = None if args.model else _train(registry)
        settings = _settings(work, registry)
        store = SqlAlertStore(settings.store)
        store.setup()
        setup_tables(store.engine)
        key, _ = KeyStore(store.engine).create(Role.SCORER, name="bench")
        store.close()
        records = _records(int(args.rate * args.seconds) + 500)

        ctx = multiprocessing.get_context("spawn")
        port = _free_port()
        server = ctx.Process(target=_serve, args=(str(work), str(registry), port), daemon=True)
        server.start()
        base = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            server.terminate()
            raise SystemExit("the API did not become ready")
        try:
            healthz = _run_load(ctx, f"{base}/healthz", "GET", [None], {}, args.rate, args.seconds)
            score = _run_load(ctx, f"{base}/v1/score", "POST", records[:-500], {"Authorization": f"Bearer {key}"},
                              args.rate, args.seconds)
        finally:
            server.terminate()
            server.join(timeout=10)
        in_process = _in_process(registry, work, records[-500:])

    result = {
        "benchmark": "api",
        "model_version": version,
        "score": score,
        "baseline_healthz": healthz,
        "baseline_in_process_score": in_process,
        "ratios": {
            "score_p50_over_healthz_p50": round(score["p50_ms"] / max(healthz["p50_ms"], 1e-9), 2),
            "score_p99_over_healthz_p99": round(score["p99_ms"] / max(healthz["p99_ms"], 1e-9), 2),
            "http_overhead_p50_ms": round(score["service_p50_ms"] - in_process["p50_ms"], 3),
        },
        "machine": describe(("fastapi", "uvicorn", "xgboost", "xgboost-cpu", "httpx")),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
