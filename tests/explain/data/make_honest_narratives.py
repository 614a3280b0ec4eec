"""Writes honest_narratives.jsonl: paraphrases of the committed cards' facts, from a grammar of phrasings.

Run from the repository root: ``python tests/explain/data/make_honest_narratives.py``. The
phrasings are written by hand (several per fact, per direction and per sentence shape) and
combined per card in a seeded random order, so that the set varies wording, order and
structure instead of copying the template. Every line was generated from the card's facts
only; the output was read and reviewed before it was committed.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from explain.card import AlertCard

HERE = Path(__file__).resolve().parent
PER_CARD = 8
SEED = 19

UP = ("raises risk", "raises the risk", "increases the risk", "adds to the risk", "pushes the risk up",
      "raises the fraud risk")
DOWN = ("lowers risk", "lowers the risk", "reduces the risk", "brings the risk down", "lowers the fraud risk")
KIND = {"ecommerce": ("ecommerce", "online"), "card_present": ("card-present", "in-person"), "atm": ("ATM",),
        None: ("",)}
SPAN = {"7d": "7-day", "30d": "30-day"}


def num(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, (pattern, text)
    return match.group(1)


def direction(rng: random.Random, reason: dict) -> str:
    return rng.choice(UP if reason["direction"] == "raises" else DOWN)


def reason_sentence(rng: random.Random, reason: dict, amount: str) -> str:
    """One reason in one of several wordings, with its numbers and its direction."""
    feature, d = reason["feature"], direction(rng, reason)
    text = reason["text"].rsplit(" — ", 1)[0]
    if feature.startswith("amount_to_mean_"):
        ratio = num(r"is ([\d.,]+)×", text)
        mean = num(r"\(([\d.,]+ [A-Z]{3})\)", text)
        span = SPAN[feature.rsplit("_", 1)[-1]]
        return rng.choice((
            f"The amount is {ratio}× the card's {span} average of {mean}, which {d}.",
            f"At {ratio} times this card's {span} average ({mean}), the amount {d}.",
            f"Compared with the {span} average of {mean}, the amount of {amount} is {ratio}× as large, and this {d}.",
            f"This card's {span} average is {mean}; the amount, {ratio}× that average, {d}.",
        ))
    if feature in ("is_new_device", "is_new_merchant", "is_new_country"):
        noun = feature.removeprefix("is_new_")
        if "no " in text and "to compare" in text:
            return f"There is no {noun} id to compare with this card's {noun}s, which {d}."
        if text.startswith("new"):
            return rng.choice((f"The {noun} is new for this card, which {d}.",
                               f"A new {noun} for this card {d}.",
                               f"This card had not used this {noun} before, which {d}."))
        return rng.choice((f"The {noun} is a known one for this card, which {d}.",
                           f"A known {noun} for this card {d}.",
                           f"This card has used the {noun} before, which {d}."))
    if feature == "kmh_from_prev_tx":
        kmh = num(r"of ([\d.,]+ km/h)", text)
        return rng.choice((f"The implied travel speed of {kmh} from the previous transaction's location {d}.",
                           f"An implied travel speed of {kmh} since the previous location {d}.",
                           f"Travelling from the previous transaction's location would take {kmh}, which {d}."))
    if feature == "km_from_prev_tx":
        km = num(r"^([\d.,]+ km)", text)
        return rng.choice((f"The distance of {km} from the previous transaction's location {d}.",
                           f"Being {km} away from the previous location {d}."))
    if feature == "seconds_since_prev_tx":
        gap = num(r"^([\d.,]+ (?:seconds|minutes|hours|days))", text)
        return rng.choice((f"Only {gap} passed since the previous transaction on this card, which {d}.",
                           f"The previous transaction came {gap} earlier, and the short gap {d}.",
                           f"A gap of {gap} since the previous transaction {d}."))
    if feature == "is_night":
        return rng.choice((f"The night-time timing {d}.", f"That it was a night-time transaction {d}."))
    if feature == "merchant_fraud_rate_90d":
        rate = num(r"([\d.]+%)", text)
        return rng.choice((f"The merchant's fraud rate over 90 days, {rate}, {d}.",
                           f"A merchant fraud rate of {rate} over 90 days {d}."))
    if feature.startswith("card_tx_count_"):
        n = num(r"^([\d,]+)", text)
        span = text.split("in the last ")[-1]
        return rng.choice((f"The {n} earlier transactions on this card in the last {span} {d}.",
                           f"With {n} earlier transactions in the last {span}, the card's history {d}."))
    if feature.startswith("card_amount_mean_"):
        mean = num(r"is ([\d.,]+ [A-Z]{3})", text)
        span = num(r"over the last ([\d]+ \w+)", text)
        return rng.choice((f"The card's average amount over the last {span}, {mean}, {d}.",
                           f"An average amount of {mean} over the last {span} {d}."))
    if feature.startswith("card_amount_sum_"):
        total = num(r"^([\d.,]+ [A-Z]{3})", text)
        span = text.split("in the last ")[-1]
        return rng.choice((f"The {total} spent on this card in the last {span} {d}.",
                           f"Spending of {total} on this card in the last {span} {d}."))
    if feature == "amount":
        return rng.choice((f"The amount itself, {amount}, {d}.", f"The transaction amount of {amount} {d}.",
                           f"Its amount, {amount}, {d}."))
    if feature == "mcc_code":
        code = num(r"code (\d{4})", text)
        return rng.choice((f"The merchant category code {code} {d}.", f"Merchant category {code} {d}."))
    if feature == "hour_of_day":
        clock = num(r"(\d{2}:\d{2} UTC)", text)
        return rng.choice((f"The time of day, {clock}, {d}.", f"A time of day of {clock} {d}."))
    if feature.startswith("card_amount_max_") and "no largest" not in text:
        top = num(r"is ([\d.,]+ [A-Z]{3})", text)
        span = num(r"in the last ([\d]+ \w+)", text)
        return rng.choice((f"The card's largest amount in the last {span}, {top}, {d}.",
                           f"A largest amount of {top} in the last {span} {d}."))
    if text.startswith("no previous location"):
        return rng.choice((f"With no previous location to compare, the travel speed {d}.",
                           f"Having no previous location for a travel speed {d}."))
    return f"The {text} {d}."


def opening(rng: random.Random, card: AlertCard, facts: object) -> str:
    tx = card.transaction
    kind = rng.choice(KIND.get(tx.channel, ("",)))
    kind_sp = f"{kind} " if kind else ""
    an = "an" if (kind or "transaction")[0].lower() in "aeiou" else "a"
    an_pay = "an" if (kind or "payment")[0].lower() in "aeiou" else "a"
    amount = f"{tx.amount:,.2f} {tx.currency}"
    score, thr = facts.score_text, facts.threshold_text  # type: ignore[attr-defined]
    date = tx.timestamp.strftime("%Y-%m-%d")
    if card.score < card.threshold:
        return rng.choice((
            f"{an.title()} {kind_sp}transaction of {amount} scored {score}, below the alert threshold of {thr}.",
            f"The model scored this {kind_sp}payment of {amount} at {score}, under its {thr} threshold.",
        ))
    return rng.choice((
        f"Suspected fraud: {an_pay} {kind_sp}payment of {amount} scored {score} against an alert threshold of {thr}.",
        f"The model flagged {an} {kind_sp}transaction of {amount} as suspected fraud, with a score of {score} "
        f"above the threshold of {thr}.",
        f"{an.title()} {kind_sp}transaction of {amount} on {date} scored {score}, above the alert threshold of {thr}, "
        f"and is a suspected fraud alert.",
        f"This {amount} {kind_sp}purchase is suspected fraud: the model gave it a score of {score}, "
        f"over the {thr} threshold.",
        f"With a score of {score} and a threshold of {thr}, the {kind_sp}transaction of {amount} is flagged as "
        f"suspected fraud.",
    ))


def history(rng: random.Random, card: AlertCard) -> str | None:
    h = card.history
    cur = card.transaction.currency
    options = []
    if h.tx_count_24h is not None and h.tx_count_7d is not None:
        options.append(f"The card had {h.tx_count_24h} earlier transactions in the last 24 hours and "
                       f"{h.tx_count_7d} in the last 7 days.")
    if h.amount_max_30d is not None:
        options.append(f"Its largest amount in the last 30 days was {h.amount_max_30d:,.2f} {cur}.")
    if h.km_from_prev_tx is not None and h.km_from_prev_tx >= 100:
        options.append(f"The previous transaction was {h.km_from_prev_tx:,.0f} km away.")
    return rng.choice(options) if options else None


def what_if(rng: random.Random, card: AlertCard) -> str | None:
    if not card.what_if:
        return None
    w = rng.choice(card.what_if)
    cur = card.transaction.currency
    new_score = num(r"score would be ([\d.]+)", w.text)
    thr = num(r"threshold ([\d.]+)", w.text)
    if w.feature == "amount":
        new, old = f"{w.new_value:,.2f} {cur}", f"{w.original_value:,.2f} {cur}"
        return rng.choice((f"At {new} instead of {old}, the score would be {new_score}.",
                           f"Had the amount been {new} instead of {old}, the model would have scored it "
                           f"{new_score} against the threshold {thr}."))
    noun = w.feature.removeprefix("is_new_")
    return rng.choice((f"Had the {noun} been one this card used before, the score would be {new_score}.",
                       f"If the {noun} had been a known one, the model would score {new_score}."))


def narratives(card_name: str, card: AlertCard, rng: random.Random) -> list[dict[str, str]]:
    facts = card.facts()
    amount = f"{card.transaction.amount:,.2f} {card.transaction.currency}"
    top = facts.narrative_reasons
    out = []
    for _ in range(PER_CARD):
        lead = opening(rng, card, facts)
        reasons = [reason_sentence(rng, r.model_dump(), amount) for r in top[: rng.choice((1, 2, 3))]]
        extras = [s for s in (history(rng, card) if rng.random() < 0.4 else None,
                              what_if(rng, card) if rng.random() < 0.5 else None) if s]
        if rng.random() < 0.3 and len(reasons) > 1:
            reasons = [reasons[0], *rng.sample(reasons[1:], len(reasons) - 1)]
        body = [lead, *reasons, *extras] if rng.random() < 0.75 else [*reasons[:1], lead, *reasons[1:], *extras]
        out.append({"card": card_name, "text": " ".join(body)})
    return out


def main() -> None:
    rng = random.Random(SEED)
    lines = []
    for path in sorted((HERE / "cards").glob("*.json")):
        card = AlertCard.model_validate_json(path.read_text())
        lines += narratives(path.stem, card, rng)
    (HERE / "honest_narratives.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    print(f"{len(lines)} honest narratives")


if __name__ == "__main__":
    main()
