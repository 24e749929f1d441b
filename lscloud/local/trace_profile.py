"""Where a route's time goes, from the local span log: `lscloud traces --where "POST /v1/declarations"`.

A request's trace is a tree of spans across processes (the gateway, the function, its S3 calls,
the events it publishes and whatever their consumers do). Its time is charged along its *critical
path*: from the route's end, the child that finished last is followed down, then the child that
finished before that one started, and so on; what no child covers is the span's own time. Of two
reads at once, the slower gets the time of both; spans of the trace that are not under the route's
span (the gateway's, the client's) are left out.

By default a request waits for its calls, not for the consumers of the events it publishes: a send
span's consumers start after it ended and are not charged. A request that does wait for them (a
teller's create answered when the bank has reserved, a long-poll) is profiled with
``follow_events``: a child then counts as finished when everything below it has, the path goes on
through the broker, the consumer, the bank's call back, and the time between a span's end and a
later child's start (the event in the broker until a pull brings it, a job in a worker's queue) is
that child's, labelled "(before it starts)". Other consumers of the same events then take the time
they overlap the end of the path with, so use it only for such routes. Spans that outlive the
route are cut at its end.

The span log is read as a stream (it may hold a gigabyte): a trace is charged once the log (the
latest end it has shown) has gone :data:`lscloud.telemetry.WRITE_LAG_NS` past where it was when the
trace's last span came, then forgotten, so what is held is the spans of the last minute or so of the
log, and of each only what the profile reads. A span written more than that after the rest of its
trace is left out.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..telemetry import STORE_TABLE, WRITE_LAG_NS, store_table

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


def _children(spans: Iterable[Span]) -> dict[str, list[Span]]:
    """A trace's spans by the id of their parent."""
    kids: dict[str, list[Span]] = {}
    for s in spans:
        kids.setdefault(s.get("parent_span_id") or "", []).append(s)
    return kids


def _under(root: Span, kids: Mapping[str, list[Span]]) -> list[Span]:
    """``root`` and every span below it in its trace (through any process)."""
    out, todo = [], [root]
    while todo:
        s = todo.pop()
        out.append(s)
        todo.extend(kids.get(s["span_id"], []))
    return out


def _charge(root: Span, kids: Mapping[str, list[Span]], into: Profile, follow_events: bool) -> None:
    reach: dict[str, int] = {}   # following events: when a span and everything below it had ended

    def reached(sp: Span) -> int:
        if not follow_events:
            return sp["end_ns"]
        sid = sp["span_id"]
        if sid not in reach:
            reach[sid] = max([sp["end_ns"], *(reached(c) for c in kids.get(sid, []))])
        return reach[sid]

    def add(name: str, a: int, b: int) -> None:
        if b > a:
            into.ms[name] = into.ms.get(name, 0.0) + (b - a) / 1e6

    def own(sp: Span, a: int, b: int, waited: Span | None) -> None:
        # the span's own time, and past its end the wait for the child the path goes on with
        add(f"{label(sp)} (own)" if sp is root else label(sp), a, min(b, sp["end_ns"]))
        if waited is not None:
            add(f"{label(waited)} (before it starts)", max(a, sp["end_ns"]), b)

    def walk(sp: Span, until: int) -> None:
        t, waited = until, None
        for c in sorted(kids.get(sp["span_id"], []), key=lambda c: (reached(c), c["start_ns"], c["span_id"]),
                        reverse=True):
            if c["start_ns"] >= t:
                continue
            c_end = min(reached(c), t)
            own(sp, c_end, t, waited)
            walk(c, c_end)
            t, waited = max(c["start_ns"], sp["start_ns"]), c
            if t <= sp["start_ns"]:
                break
        own(sp, sp["start_ns"], t, waited)

    walk(root, root["end_ns"])
    for sp in _under(root, kids):
        if sp is not root:
            into.spans[label(sp)] = into.spans.get(label(sp), 0) + 1
    into.took_ms.append((root["end_ns"] - root["start_ns"]) / 1e6)


# what the profile reads of a span (a line of the log holds much more: every attribute, the events)
_READ = ("trace_id", "span_id", "parent_span_id", "name", "kind", "service", "start_ns", "end_ns")
_READ_ATTRIBUTES = ("aws.s3.key", STORE_TABLE)


def _slim(span: Span) -> Span:
    out = {k: span[k] for k in _READ if k in span}
    attributes = span.get("attributes") or {}
    out["attributes"] = {k: attributes[k] for k in _READ_ATTRIBUTES if k in attributes}
    return out


def profile(spans: Iterable[Span], route: str, *, skip: int = 0, follow_events: bool = False) -> Profile:
    """Where the time of the SERVER spans named ``route`` goes (see the module's docstring); the
    first ``skip`` requests (a warm-up) are left out. ``spans`` may be a stream (in the log's order,
    :func:`lscloud.telemetry.iter_trace_file`): it is read once."""
    out = Profile(route)
    held: dict[str, list[Span]] = {}     # the traces not charged yet: their spans so far
    touched: dict[str, int] = {}         # and where the log was (its latest end) when the last one came
    closing: list[tuple[int, str]] = []  # (touched, trace id), earliest first; those of a trace touched since are stale
    warmup: list[tuple[int, int, Profile]] = []   # the `skip` earliest requests so far, latest on top
    took: list[tuple[int, float]] = []   # (start, ms at the route) of every request counted
    arrival = itertools.count()

    def count(start: int, one: Profile) -> None:
        for k, v in one.ms.items():
            out.ms[k] = out.ms.get(k, 0.0) + v
        for k, v in one.spans.items():
            out.spans[k] = out.spans.get(k, 0) + v
        took.append((start, one.took_ms[0]))

    def close(trace_id: str) -> None:
        members = held.pop(trace_id)
        del touched[trace_id]
        roots = [s for s in members if s["name"] == route and s.get("kind") == "SERVER"]
        if not roots:
            return
        kids = _children(members)
        for root in roots:
            one = Profile(route)
            _charge(root, kids, one, follow_events)
            if not skip:
                count(root["start_ns"], one)
                continue
            # a request later than `skip` others is no warm-up, whatever comes after it
            heapq.heappush(warmup, (-root["start_ns"], next(arrival), one))
            if len(warmup) > skip:
                neg_start, _, one = heapq.heappop(warmup)
                count(-neg_start, one)

    latest = None   # the latest end the log has shown: where it is, in time
    for s in spans:
        start, end = s.get("start_ns"), s.get("end_ns")
        if start is None or end is None:   # a span cut short has no end
            continue
        if latest is None or end > latest:
            latest = end
        trace_id = s["trace_id"]
        members = held.get(trace_id)
        if members is None:
            held[trace_id] = members = []
        if touched.get(trace_id) != latest:
            # a trace written late (or out of order) stays open a while from where it was written
            touched[trace_id] = latest
            heapq.heappush(closing, (latest, trace_id))
        members.append(_slim(s))
        while closing and closing[0][0] + WRITE_LAG_NS < latest:
            when, trace_id = heapq.heappop(closing)
            if touched.get(trace_id) == when:
                close(trace_id)
    for trace_id in sorted(held, key=touched.__getitem__):
        close(trace_id)
    took.sort(key=lambda t: t[0])
    out.took_ms = [ms for _, ms in took]
    return out


def format_profile(p: Profile, *, top: int = 25) -> str:
    """The profile as a table, the ``top`` labels that took most first."""
    if not p.requests:
        return f"no SERVER span named {p.route!r} in the span log"
    took = sorted(p.took_ms)
    lines = [f"where the time of {p.route} goes: {p.requests} request(s), median {statistics.median(took):.2f} ms, "
             f"p90 {took[int(0.9 * (len(took) - 1))]:.2f} ms at the route",
             f"{'ms a request':>12}  {'share':>6}  {'spans':>6}  span (service kind name [table])"]
    rows = p.rows()
    for name, ms, share, count in rows[:top]:
        spans = f"{count:6.2f}" if count else ""   # a span's own time or a wait: not a span of its own
        lines.append(f"{ms:12.2f}  {share:6.1%}  {spans:>6}  {name}")
    if len(rows) > top:
        rest = rows[top:]
        lines.append(f"{sum(r[1] for r in rest):12.2f}  {sum(r[2] for r in rest):6.1%}  {'':>6}  "
                     f"({len(rest)} more)")
    return "\n".join(lines)
