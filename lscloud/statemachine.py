"""A table-driven state machine for documents that move through states (declarations, dossiers,
transfers, reports …). Plain Python over the document dict; each function passes its table.

A function declares its actions once::

    MACHINE = StateMachine("border", [
        Action("submit", {"draft"}, "submitted", "declaration.submitted", actors={"enterprise"}),
        Action("release", {"under_inspection"}, "cleared", "declaration.cleared", actors={"officer"},
               agency="customs"),
        ...
    ], states=STATES, terminal={"exited", "refused"}, noun=("declaration", "tờ khai"), state_names_vi=STATE_VI)

and moves a document with ``t = MACHINE.apply(doc, "submit", actor)``: the rule is checked (who
may act, from which states, for which kinds of document), the state field and its timestamp are
set, and the :class:`Transition` that comes back is what the audit trail and the event are made
of (:mod:`lscloud.aggregate` writes both). A refused move raises :class:`IllegalTransition`
(409, naming the current state and the states it is allowed from) or :class:`NotPermitted` (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from . import errors
from .timestamps import iso, now, parse_iso

__all__ = ["Actor", "Action", "Transition", "StateMachine", "IllegalTransition", "NotPermitted", "iso", "now",
           "parse_iso"]


@dataclass(frozen=True)
class Actor:
    """Who acts: ``kind`` is the caller's role as the state machine sees it (``system`` for the
    platform's own moves: sweeps, the clock), with the token's scopes."""

    kind: str
    sub: str | None = None
    agency: str | None = None
    unit: str | None = None

    @classmethod
    def of(cls, principal: Any) -> "Actor":
        """The actor for a :class:`lscloud.auth.Principal` (an anonymous caller is ``anonymous``)."""
        return cls(principal.role or "anonymous", principal.sub, principal.agency, principal.unit)

    def as_dict(self) -> dict:
        return {k: v for k, v in (("kind", self.kind), ("sub", self.sub), ("agency", self.agency),
                                  ("unit", self.unit)) if v is not None}

    def pseudonymous(self, purpose: str) -> "Actor":
        """This actor with its subject replaced by its pseudonym for ``purpose``
        (:func:`lscloud.pseudonyms.pseudonym`): for audit entries and events of a function whose
        callers' subjects are personal identifiers (a citizen's CCCD, a household business's tax code)."""
        from . import pseudonyms

        return Actor(self.kind, pseudonyms.pseudonym(purpose, self.sub) if self.sub else None, self.agency, self.unit)


@dataclass(frozen=True)
class Action:
    """One row of the table.

    - ``sources``: the states the action may start from; ``target``: where it leads (``None``:
      the caller names the target when it applies the action, e.g. "back to the state before the
      pause");
    - ``fact``: the event it publishes, ``vn.langson.<domain>.<fact>.v1``;
    - ``actors``: the actor kinds that may take it (empty: the machine does not check, the caller
      does); ``system`` may always act;
    - ``agency``: an officer must also belong to this agency (customs' final release);
    - ``kinds``: the action exists only for documents whose ``kind`` is one of these
      (withdrawals are committed, deposits are confirmed).
    """

    name: str
    sources: frozenset[str]
    target: str | None
    fact: str
    actors: frozenset[str] = frozenset()
    agency: str | None = None
    kinds: frozenset[str] = frozenset()

    def __init__(self, name: str, sources: Iterable[str], target: str | None, fact: str, *,
                 actors: Iterable[str] = (), agency: str | None = None, kinds: Iterable[str] = ()):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "sources", frozenset(sources))
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "fact", fact)
        object.__setattr__(self, "actors", frozenset(actors))
        object.__setattr__(self, "agency", agency)
        object.__setattr__(self, "kinds", frozenset(kinds))


@dataclass
class Transition:
    """What one applied action did: the audit entry and the event are made from it."""

    action: str
    source: str
    target: str
    fact: str
    type: str
    actor: Actor
    at: str
    reason: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        return self.type

    def audit(self) -> dict:
        """The audit-trail entry."""
        return {"action": self.action, "from": self.source, "to": self.target, "fact": self.fact, "at": self.at,
                "actor": self.actor.as_dict(), "reason": self.reason, "details": self.details}

    def event_data(self) -> dict:
        """What the transition adds to the document's summary in its event."""
        return {"from": self.source, "to": self.target, "action": self.action, "at": self.at,
                "actor": self.actor.as_dict(), "reason": self.reason, "details": self.details}


class IllegalTransition(errors.Conflict):
    """The action is not possible from the document's current state (409)."""

    type = "illegal-transition"
    title, title_vi = "Illegal transition", "Không thể chuyển trạng thái"

    def __init__(self, action: str, state: str, allowed_from: Iterable[str] = (), *, detail: str | None = None,
                 detail_vi: str | None = None):
        super().__init__(detail or f"Cannot {action.replace('_', ' ')} from state {state}.",
                         detail_vi=detail_vi or f"Không thể thực hiện thao tác ở trạng thái {state}.",
                         current_state=state, action=action, allowed_from=sorted(allowed_from))
        self.action, self.state, self.allowed_from = action, state, sorted(allowed_from)


class NotPermitted(errors.Forbidden):
    """This actor may not take this action on this document (403).

    Its own type, not ``forbidden``: that is the door's answer (a role the route does not admit,
    :func:`lscloud.auth.allow`), and the role-matrix tests tell the two apart by it.
    """

    type = "action-not-permitted"
    title, title_vi = "Action not permitted", "Không có quyền"

    def __init__(self, detail: str, *, detail_vi: str | None = None, action: str | None = None):
        super().__init__(detail, detail_vi=detail_vi or "Bạn không được phép thực hiện thao tác này.",
                         **({"action": action} if action else {}))
        self.action = action


class StateMachine:
    """The actions of one kind of document, checked and applied the same way everywhere.

    ``domain`` names the events (``vn.langson.<domain>.<fact>.v1``); ``states`` lists every
    state, ``terminal`` the final ones; ``state_field`` is the document key holding the state
    (``status`` or ``state``); ``noun`` is ``(english, vietnamese)`` for messages
    (``("declaration", "tờ khai")``) and ``state_names_vi`` names the states in Vietnamese.
    """

    def __init__(self, domain: str, actions: Iterable[Action], *, states: Iterable[str],
                 terminal: Iterable[str] = (), state_field: str = "status", kind_field: str = "kind",
                 noun: tuple[str, str] = ("record", "hồ sơ"), state_names_vi: Mapping[str, str] | None = None):
        self.domain = domain
        self.actions: dict[str, Action] = {}
        self.states = tuple(states)
        self.terminal = frozenset(terminal)
        self.state_field = state_field
        self.kind_field = kind_field
        self.noun, self.noun_vi = noun
        self.state_names_vi = dict(state_names_vi or {})
        known = set(self.states)
        for a in actions:
            if a.name in self.actions:
                raise ValueError(f"action {a.name!r} declared twice")
            unknown = (set(a.sources) | ({a.target} if a.target else set())) - known - {"new"}
            if unknown:
                raise ValueError(f"action {a.name!r} names unknown states {sorted(unknown)}")
            self.actions[a.name] = a
        if not self.terminal <= known:
            raise ValueError(f"terminal states {sorted(self.terminal - known)} are not states")
        self.system = Actor("system", domain)

    def event_type(self, fact: str) -> str:
        return f"vn.langson.{self.domain}.{fact}.v1"

    def state_vi(self, state: str) -> str:
        return self.state_names_vi.get(state, state)

    def __getitem__(self, name: str) -> Action:
        return self.actions[name]

    def illegal(self, action: str, state: str, why: str | None = None, why_vi: str | None = None) -> IllegalTransition:
        """The 409 for ``action`` from ``state`` (``why`` replaces the standard sentence)."""
        a = self.actions.get(action)
        return IllegalTransition(
            action, state, a.sources if a else (),
            detail=why or f"Cannot {action.replace('_', ' ')}: the {self.noun} is {state}.",
            detail_vi=why_vi or f"Không thể thực hiện thao tác: {self.noun_vi} {self.state_vi(state)}.")

    def not_permitted(self, action: str, actor: Actor) -> NotPermitted:
        """The 403 for ``actor`` taking ``action`` (also for a rule outside the table: another gate's
        operator)."""
        agency = f" of {actor.agency}" if actor.agency else ""
        return NotPermitted(f"a {actor.kind}{agency} may not {action.replace('_', ' ')} a {self.noun}",
                            detail_vi=f"Bạn không được phép thực hiện thao tác này trên {self.noun_vi}.", action=action)

    def check(self, doc: Mapping[str, Any], action: str, actor: Actor | None = None) -> Action:
        """The action if ``actor`` may take it on ``doc`` now; else NotPermitted / IllegalTransition."""
        a = self.actions[action]
        state = doc[self.state_field]
        if a.kinds and doc.get(self.kind_field) not in a.kinds:
            kind = doc.get(self.kind_field)
            raise IllegalTransition(action, state, (), detail=f"Cannot {action.replace('_', ' ')}: "
                                    f"a {kind} has no such step.",
                                    detail_vi=f"Không thể thực hiện thao tác với loại {kind}.")
        if actor is not None and a.actors and actor.kind != "system":
            if actor.kind not in a.actors or (a.agency and actor.kind == "officer" and actor.agency != a.agency):
                raise self.not_permitted(action, actor)
        if state not in a.sources:
            raise self.illegal(action, state)
        return a

    def apply(self, doc: dict, action: str, actor: Actor, *, at: datetime | None = None, reason: str | None = None,
              details: Mapping[str, Any] | None = None, target: str | None = None, fact: str | None = None,
              check: bool = True) -> Transition:
        """Move ``doc`` (mutated in place) by ``action``; returns the transition.

        ``target`` overrides the action's target (required when the table leaves it ``None``),
        ``fact`` its event (a step inside a state: ``step.completed``). Sets the state field, the
        first time each state was reached (``timestamps``) and ``updated_at``.
        """
        a = self.check(doc, action, actor) if check else self.actions[action]
        to = target or a.target
        if to is None:
            raise ValueError(f"action {action!r} has no fixed target: pass target=")
        when = iso(at or now())
        f = fact or a.fact
        t = Transition(a.name, doc[self.state_field], to, f, self.event_type(f), actor, when, reason,
                       dict(details or {}))
        doc[self.state_field] = to
        doc.setdefault("timestamps", {}).setdefault(to, when)
        doc["updated_at"] = when
        return t

    def note(self, doc: Mapping[str, Any], action: str, fact: str, actor: Actor, *, at: datetime | None = None,
             reason: str | None = None, details: Mapping[str, Any] | None = None) -> Transition:
        """A transition that keeps the state (a step inside it: an overdue flag, a risk lane change)."""
        state = doc[self.state_field]
        return Transition(action, state, state, fact, self.event_type(fact), actor, iso(at or now()), reason,
                          dict(details or {}))

    def allowed_actions(self, state: str, kind: str | None = None) -> list[str]:
        """The actions that may start from ``state`` (for a document of ``kind``)."""
        return sorted(name for name, a in self.actions.items()
                      if state in a.sources and (not a.kinds or kind in a.kinds))

    def is_terminal(self, state: str) -> bool:
        return state in self.terminal
