"""One scoring process with the rule scorer: the subject of the kill -9 and SIGTERM tests.

Runs :func:`streaming.service.serve`, the same wiring as ``fraudlens stream``, so
the process killed in the tests is the process that ships (only the scorer differs).

    python tests/streaming/service_main.py --kafka '<KafkaSettings JSON>' --store sqlite:///x.db
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

import numpy as np

from features.schema import Transaction
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

    def __init__(self, redis_url: str, prefix: str) -> None:
        from features.state import RedisStateStore

        self.state = RedisStateStore(redis_url, prefix).setup()

    @property
    def model_version(self) -> str:
        return "card-count-v1"

    def score_batch(self, txs: Sequence[Transaction]) -> ScoredBatch:
        keys = list(dict.fromkeys(tx.card_id for tx in txs))
        states = self.state.load_many(keys)
        counts = []
        for tx in txs:
            state = states.setdefault(tx.card_id, {"n": 0})
            counts.append(state["n"])
            state["n"] += 1
        self.state.save_many(states, None)
        n = np.asarray(counts, dtype=np.float64)
        scores = n / (n + 1.0)
        return ScoredBatch(scores=scores, alerts=np.zeros(len(txs), dtype=bool), threshold=1.0,
                           model_version=self.model_version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kafka", required=True, help="KafkaSettings as JSON")
    parser.add_argument("--store", required=True, help="store URL")
    parser.add_argument("--idle-exit", type=float, default=None)
    parser.add_argument("--redis", default=None, help="REDIS_URL PREFIX: use the stateful card-count scorer")
    args = parser.parse_args(argv)
    use_json_logs()
    scorer: Scorer = RuleScorer()
    if args.redis:
        url, prefix = args.redis.split(" ", 1)
        scorer = CardCountScorer(url, prefix)
    summary = serve(KafkaSettings.model_validate_json(args.kafka), StoreSettings(url=args.store), scorer,
                    idle_exit_s=args.idle_exit)
    print(json.dumps({"summary": dataclasses.asdict(summary)}), flush=True)
    return EXIT_UNFINISHED if summary.interrupted else 0  # as `fraudlens stream` does


if __name__ == "__main__":
    sys.exit(main())
