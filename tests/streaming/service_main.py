"""One scoring process: the subject of the kill -9 and SIGTERM tests.

Runs :func:`streaming.service.serve`, the same wiring as ``fraudlens stream``, so
the process killed in the tests is the process that ships (only the scorer differs):
the rule scorer by default, the per-card counting scorer with ``--redis``, or a real
model bundle with ``--model`` (feature state in memory, or in Redis with ``--state``).

    python tests/streaming/service_main.py --kafka '<KafkaSettings JSON>' --store sqlite:///x.db
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from features.schema import Transaction
from features.state import StateStore
from streaming.logs import use_json_logs
from streaming.scoring import RuleScorer, ScoredBatch, Scorer
from streaming.service import serve
from streaming.settings import KafkaSettings, StoreSettings
from streaming.shutdown import EXIT_UNFINISHED


class CardCountScorer:
    """A stateful scorer: score = n / (n + 1) where n = the card's earlier transactions.

    Its state lives in the same Redis state store the feature pipeline uses, so the
    rebalance test can check per-card features across consumers: the k-th transaction
    of a card must see n = k - 1, whichever process scored it.
    """

    def __init__(self, state: StateStore) -> None:
        self.state = state

    @classmethod
    def in_redis(cls, redis_url: str, prefix: str) -> CardCountScorer:
        from features.state import RedisStateStore

        return cls(RedisStateStore(redis_url, prefix).setup())

    @property
    def model_version(self) -> str:
        return "card-count-v1"

    # streaming.scoring.StatefulScorer: the service checkpoints this state with the offsets.
    @property
    def feature_state(self) -> StateStore:
        return self.state

    @property
    def label_state_prefixes(self) -> tuple[str, ...]:
        return ()

    def update_state(self, txs: Sequence[Transaction]) -> None:
        self._count(txs)

    def _count(self, txs: Sequence[Transaction]) -> list[int]:
        keys = list(dict.fromkeys(tx.card_id for tx in txs))
        states = self.state.load_many(keys)
        counts = []
        for tx in txs:
            state = states.setdefault(tx.card_id, {"n": 0})
            counts.append(state["n"])
            state["n"] += 1
        self.state.save_many(states, None)
        return counts

    def score_batch(self, txs: Sequence[Transaction]) -> ScoredBatch:
        n = np.asarray(self._count(txs), dtype=np.float64)
        scores = n / (n + 1.0)
        return ScoredBatch(scores=scores, alerts=np.zeros(len(txs), dtype=bool), threshold=1.0,
                           model_version=self.model_version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kafka", required=True, help="KafkaSettings as JSON")
    parser.add_argument("--store", required=True, help="store URL")
    parser.add_argument("--idle-exit", type=float, default=None)
    parser.add_argument("--redis", default=None, help="REDIS_URL PREFIX: use the stateful card-count scorer")
    parser.add_argument("--count-in-memory", action="store_true", help="the card-count scorer, state in memory")
    parser.add_argument("--model", default=None, help="model bundle directory: a real ModelScorer")
    parser.add_argument("--state", default="memory", help="the model's feature state: memory, or 'redis URL PREFIX'")
    args = parser.parse_args(argv)
    use_json_logs()
    scorer: Scorer = RuleScorer()
    if args.redis:
        url, prefix = args.redis.split(" ", 1)
        scorer = CardCountScorer.in_redis(url, prefix)
    elif args.count_in_memory:
        from features.state import MemoryStateStore

        scorer = CardCountScorer(MemoryStateStore())
    elif args.model:
        from fraudlens.settings import StateSettings
        from streaming.scoring import ModelScorer

        state = StateSettings()
        if args.state != "memory":
            _, url, prefix = args.state.split(" ", 2)
            state = StateSettings(backend="redis", redis_url=url, key_prefix=prefix)
        scorer = ModelScorer.load(Path(args.model), state, explain=False)
    summary = serve(KafkaSettings.model_validate_json(args.kafka), StoreSettings(url=args.store), scorer,
                    idle_exit_s=args.idle_exit)
    print(json.dumps({"summary": dataclasses.asdict(summary)}), flush=True)
    return EXIT_UNFINISHED if summary.interrupted else 0  # as `fraudlens stream` does


if __name__ == "__main__":
    sys.exit(main())
