"""Where a route's time goes, from the local span log: `lscloud traces --where "POST /v1/withdrawals"`.

A request's trace is a tree of spans across processes (the gateway, the function, its S3 calls,
the events it publishes and whatever their consumers do, down to a bank's call back). For each
request to the route, every instant of its SERVER span is given to the spans doing something
then: the *active leaves*, the spans under it that are open at that instant with no open span
under them (a span waits on what was started below it, also through spans that have ended: a
request waits on the consumer of an event it published). Parallel leaves share the instant
equally. An instant with no open span under the route's goes to the next span to start whose
parent has ended, labelled "(before it starts)": an event in the broker until its consumer pulls
it, a job in a worker's queue. With none, it is the route's own (its Python between calls).

So a request that publishes an event and waits for a bank to answer it is charged for the
dispatcher's delivery, the bank's webhook and the call back, each where it happened: what a
critical path shows, without guessing which branch a wait was for. Spans of the trace that are
not under the route's span (the gateway's, the client's) are left out; spans under it that outlive
it are cut at its end.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..telemetry import store_table

Span = Mapping[str, Any]


def label(span: Span) -> str:
    """A span as the profile names it: its service, kind, name and, for a store call, its table."""
    return f"{span.get('service', '?')} {span.get('kind', '?')} {span['name']}{store_table(span.get('attributes') or {})}"


@dataclass
class Profile:
    """The route's requests (``requests``), each one's duration at the route (``took_ms``), and for
    each label the milliseconds given to it and how many of its spans there were, over all requests."""

    route: str
    took_ms: list[float] = field(default_factory=list)
    ms: dict[str, float] = field(default_factory=dict)
    spans: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.took_ms)

    def rows(self) -> list[tuple[str, float, float, float]]:
        """(label, ms a request, share of the route's time, spans a request), most time first."""
        n, total = self.requests, sum(self.ms.values())
        return sorted(((k, v / n, v / total if total else 0.0, self.spans.get(k, 0) / n) for k, v in self.ms.items()),
                      key=lambda r: -r[1])


def _under(root: Span, spans: Sequence[Span]) -> list[Span]:
    """``root`` and every span below it in its trace (through any process)."""
    children: dict[str, list[Span]] = {}
    for s in spans:
        children.setdefault(s.get("parent_span_id") or "", []).append(s)
    out, todo = [], [root]
    while todo:
        s = todo.pop()
        out.append(s)
        todo.extend(children.get(s["span_id"], []))
    return out


def _waiting_on(open_: list[Span], parent: Mapping[str, str | None]) -> set[str]:
    """The open spans with an open span below them (through ended ones: a request waits on the
    consumer of the event it published, whose send span has ended)."""
    busy: set[str] = set()
    for s in open_:
        up = parent.get(s["span_id"])
        while up is not None and up not in busy:
            busy.add(up)
            up = parent.get(up)
    return busy


def _charge(root: Span, tree: list[Span], into: Profile) -> None:
    start, end = root["start_ns"], root["end_ns"]
    parent = {s["span_id"]: s.get("parent_span_id") for s in tree}
    clipped = [(max(s["start_ns"], start), min(s["end_ns"], end), s) for s in tree]
    clipped = [(a, b, s) for a, b, s in clipped if b > a or s is root]
    cuts = sorted({start, end, *(a for a, _, _ in clipped), *(b for _, b, _ in clipped)})
    own = f"{label(root)} (own)"
    ends = {s["span_id"]: s["end_ns"] for s in tree}
    for a, b in zip(cuts, cuts[1:]):
        open_ = [s for lo, hi, s in clipped if lo <= a and hi >= b]
        busy = _waiting_on(open_, parent)
        leaves = [s for s in open_ if s["span_id"] not in busy]
        if leaves == [root]:
            # nothing under the route is open: the route's own work, unless a span whose parent has
            # ended is yet to start (an event in the broker, waiting for its consumer's pull)
            coming = [s for s in tree if s["start_ns"] >= b and ends.get(parent[s["span_id"]], end) <= a]
            if coming:
                leaves = [min(coming, key=lambda s: s["start_ns"])]
        names = [own if s is root else f"{label(s)} (before it starts)" if s["start_ns"] >= b else label(s)
                 for s in leaves]
        for name in names:
            into.ms[name] = into.ms.get(name, 0.0) + (b - a) / 1e6 / len(names)
    for s in tree:
        if s is not root:
            into.spans[label(s)] = into.spans.get(label(s), 0) + 1
    into.took_ms.append((end - start) / 1e6)


def profile(spans: Iterable[Span], route: str, *, skip: int = 0) -> Profile:
    """Where the time of the SERVER spans named ``route`` goes (see the module's docstring); the
    first ``skip`` requests (a warm-up) are left out."""
    by_trace: dict[str, list[Span]] = {}
    for s in spans:
        if s.get("start_ns") is not None and s.get("end_ns") is not None:   # a span cut short has no end
            by_trace.setdefault(s["trace_id"], []).append(s)
    roots = sorted((s for members in by_trace.values() for s in members
                    if s["name"] == route and s.get("kind") == "SERVER"), key=lambda s: s["start_ns"])
    out = Profile(route)
    for root in roots[skip:]:
        _charge(root, _under(root, by_trace[root["trace_id"]]), out)
    return out


def format_profile(p: Profile, *, top: int = 25) -> str:
    if not p.requests:
        return f"no SERVER span named {p.route!r} in the span log"
    took = sorted(p.took_ms)
    lines = [f"where the time of {p.route} goes: {p.requests} request(s), median {statistics.median(took):.2f} ms, "
             f"p90 {took[int(0.9 * (len(took) - 1))]:.2f} ms at the route",
             f"{'ms a request':>12}  {'share':>6}  {'spans':>6}  span (service kind name [table])"]
    rows = p.rows()
    for name, ms, share, count in rows[:top]:
        lines.append(f"{ms:12.2f}  {share:6.1%}  {count:6.2f}  {name}")
    if len(rows) > top:
        rest = rows[top:]
        lines.append(f"{sum(r[1] for r in rest):12.2f}  {sum(r[2] for r in rest):6.1%}  {'':>6}  "
                     f"({len(rest)} more)")
    return "\n".join(lines)
