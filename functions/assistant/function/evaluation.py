"""Scoring the assistant on its evaluation set (``data/eval.yaml``): top-1 and top-3 procedure
accuracy, intent accuracy, per intent and per part (``tuning`` / ``holdout``), and conversations.

Plain Python over :class:`.retrieval.Index` and :mod:`.dialogue` (no store, no HTTP), so the
unit test holds a floor and ``python3 -m functions.assistant.cli eval`` prints the figures; the
bench (``lscloud bench assistant``) asks the same questions through the gateway.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Mapping

import yaml

from . import dialogue, text
from .retrieval import Index


def cases() -> dict:
    """``{"tuning": [...], "holdout": [...], "conversations": [[...]]}``; a case is (question, code|None, intent)."""
    return yaml.safe_load((text.DATA / "eval.yaml").read_text(encoding="utf-8"))


@dataclass
class Score:
    n: int = 0
    top1: int = 0
    top3: int = 0
    intent: int = 0
    per_intent: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    latencies_ms: list = field(default_factory=list)
    misses: list = field(default_factory=list)

    def add(self, question: str, expected: str | None, intent: str, got_codes: list[str], got_intent: str,
            ms: float) -> None:
        self.n += 1
        hit1 = (got_codes[:1] == [expected]) if expected else not got_codes[:1] or got_intent == "status"
        hit3 = (expected in got_codes[:3]) if expected else hit1
        self.top1 += hit1
        self.top3 += hit3
        self.intent += got_intent == intent
        self.per_intent[intent][0] += 1
        self.per_intent[intent][1] += hit1 and got_intent == intent
        self.latencies_ms.append(ms)
        if not (hit1 and got_intent == intent):
            self.misses.append((question, expected, intent, got_codes[:3], got_intent))

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms) or [0.0]
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]   # noqa: E731
        return {"n": self.n, "top1": self.top1 / max(1, self.n), "top3": self.top3 / max(1, self.n),
                "intent": self.intent / max(1, self.n),
                "per_intent": {k: {"n": v[0], "both_right": v[1] / v[0]} for k, v in sorted(self.per_intent.items())},
                "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def run(index: Index, ask: Callable[[str, Mapping | None], dict] | None = None) -> dict:
    """Every part scored; ``ask(question, context) -> turn`` defaults to :func:`dialogue.understand`."""
    ask = ask or (lambda q, ctx: dialogue.understand(index, q, ctx))
    data = cases()
    out = {}
    for part in ("tuning", "holdout"):
        score = Score()
        for question, expected, intent in data[part]:
            t0 = time.perf_counter()
            turn = ask(question, None)
            score.add(question, expected, intent, turn["candidates"], turn["intent"], (time.perf_counter() - t0) * 1e3)
        out[part] = score
    conv = Score()
    for conversation in data.get("conversations") or []:
        context = None
        for question, expected, intent in conversation:
            t0 = time.perf_counter()
            turn = ask(question, context)
            conv.add(question, expected, intent, turn["candidates"], turn["intent"], (time.perf_counter() - t0) * 1e3)
            context = turn["context"]
    out["conversations"] = conv
    return out


def report(results: Mapping[str, Score]) -> str:
    lines = []
    for part, score in results.items():
        s = score.summary()
        lines.append(f"{part:<14} n={s['n']:<4} top-1 {s['top1']:.1%}  top-3 {s['top3']:.1%}  intent {s['intent']:.1%}"
                     f"  p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms")
        for intent, v in s["per_intent"].items():
            lines.append(f"    {intent:<10} n={v['n']:<3} procedure and intent right {v['both_right']:.1%}")
    return "\n".join(lines)
