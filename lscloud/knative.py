"""Turn a function's Flask app into the Knative ``new()`` contract of the func-python middleware.

``new = function(create_app, events={...})`` in ``function/func.py``; the object ``new()``
returns has ``async handle(scope, receive, send)`` (ASGI, Flask on worker threads through
:class:`lscloud.wsgi_bridge.WsgiBridge`), and the sync ``start(cfg)`` / ``stop()`` / ``alive()`` /
``ready()`` hooks. ``ready()`` really asks the
dependencies the function declares it needs (``needs=``: the object store, NATS). Events from
Knative Eventing arrive at ``POST /events``, which accepts only a sender that presents a delivery
token (:func:`lscloud.auth.verify_event_sender`: the broker's OIDC token in the cluster, the local
dispatcher's own token under ``lscloud up``). Before a handler runs, the event's ``data`` is checked
against the schema of its type (:class:`EventSchemas`): data that does not match is refused there.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlparse

from flask import Flask, current_app, g, jsonify, request

from . import (asgi, auth, config, deadletters, events, metrics, redaction, runonce, runtime, statemachine, store,
               telemetry, web)
from .context import app_state
from .auth import EVENTING, allow
from .errors import Conflict, DomainError
from .patterns import ecma_regex
from .problems import Problem

log = logging.getLogger("lscloud.knative")

EventHandler = Callable[[dict], Any]

DEPENDENCIES = ("s3", "nats")
"""What ``needs=`` may name: ``"s3"`` the object store (and the bucket), ``"nats"`` the bus.

Name ``"nats"`` only for a function that cannot answer without the bus (the soft ATM: its partner
banks' nonces are in a JetStream key-value bucket). A function that only publishes keeps serving
while NATS is away — its events wait in its outbox (:mod:`lscloud.outbox`), which a request fills at
once when the bus is down — and its readiness must not depend on NATS: Knative stops sending
traffic to a replica that is not ready, so a NATS outage took every such function out, reads and
all, within 15 s, while each of them could still have answered."""


class Function:
    """One Knative function instance: a Flask app behind ASGI, plus lifecycle hooks."""

    def __init__(self, app_factory: Callable[..., Flask], events: Mapping[str, EventHandler] | None = None,
                 needs: tuple[str, ...] = DEPENDENCIES):
        self.app_factory = app_factory
        self.events = dict(events or {})
        self.needs = _check_needs(needs)
        self.settings: config.Settings | None = None
        self.app: Flask | None = None
        self._runtime: runtime.Runtime | None = None
        self._asgi = None
        self._probe = None
        self._lock = threading.Lock()
        self._served = False   # ready once already: the AFTER_READY work is started

    # -- lifecycle (called without await by func-python: keep these sync) ----------------------

    def start(self, cfg: Mapping[str, str]) -> None:
        """Build settings from ``cfg`` (the environment), install the runtime, create the app."""
        from .store.objects import ObjectStore
        from .wsgi_bridge import WsgiBridge

        with self._lock:
            settings = config.load(cfg)
            self._runtime = runtime.install(runtime.Runtime(settings))
            telemetry.setup(settings)
            app = self._build(settings)
            self.settings, self.app = settings, app
            self._asgi = WsgiBridge(app, workers=16)
            # readiness gets its own client with short timeouts so a dead store answers fast
            self._probe = ObjectStore.from_settings(settings, max_pool=2, timeout_s=2.0)
            log.info("function %s started", settings.service)

    def _build(self, settings: config.Settings) -> Flask:
        factory = self.app_factory
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            params = {}
        takes_settings = "settings" in params or any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params.values())
        app = factory(settings) if takes_settings else factory()
        if not isinstance(app, Flask):
            raise TypeError(f"the app factory must return a Flask app, got {type(app).__name__}")
        handlers = dict(self.events)
        package = _package_of(factory)
        if "s3" in self.needs and (run_once_records(app, self.events, package) or uses_outbox(package)):
            handlers = _with_housekeeping(handlers)
        if handlers:
            auth.check_eventing_settings(settings)  # /events must be able to verify its sender
            # none found for a function that handles another function's events: the start stops here
            app.extensions[EVENT_SCHEMAS] = EventSchemas.of(app, required=any(
                not t.startswith(PLATFORM_EVENTS) for t in handlers))
            _add_events_route(app, handlers)
            _add_dead_letter_route(app, handlers)   # where its Triggers' dead letters come
        web.check_access(app)  # a route without @allow stops the start
        return app

    def stop(self) -> None:
        """Close the runtime's clients (the bus drains pending publishes)."""
        with self._lock:
            if self._asgi is not None:
                self._asgi.executor.shutdown(wait=False)
                self._asgi = None
            if self._runtime is not None:
                if runtime.installed() is self._runtime:
                    runtime.uninstall()
                else:
                    self._runtime.close()
                self._runtime = None

    def alive(self) -> tuple[bool, str]:
        return True, "OK" if self.app is not None else "starting"

    def ready(self) -> tuple[bool, str]:
        """True only when every dependency in ``needs`` answers: for ``"s3"`` the object store
        has our bucket, for ``"nats"`` NATS answers a ping. Others are not asked.

        A function whose replicas need a moment after start before they answer at speed (an index
        built from reference data) adds ``check() -> (ok, why)`` to
        ``app.extensions["lscloud.readiness"]`` (a list): until every check is ok the replica is
        not ready, so Knative sends it no traffic yet. Work that should wait for the replica to
        serve instead goes in ``app.extensions["lscloud.after_ready"]`` (:data:`AFTER_READY`),
        started the first time this answers ready."""
        if self.app is None or self.settings is None:
            return False, "not started"
        for check in self.app.extensions.get(READINESS_CHECKS, ()):
            ok, why = check()
            if not ok:
                return False, why
        if "s3" in self.needs:
            try:
                with telemetry.untraced():  # a probe every few seconds is not a trace anyone wants
                    self._probe.ping(self.settings.bucket)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                metrics.readiness_failed("s3")
                return False, f"object store not ready: {getattr(exc, 'cause', exc.__class__.__name__)}"
        if "nats" in self.needs:
            try:
                _ping_nats(self._runtime, self.settings)
            except Exception as exc:  # noqa: BLE001
                metrics.readiness_failed("nats")
                return False, f"nats not ready: {exc.__class__.__name__}"
        if not self._served:
            self._start_after_ready()
        return True, "OK"

    def _start_after_ready(self) -> None:
        with self._lock:
            if self._served:
                return
            self._served = True
        work = list(self.app.extensions.get(AFTER_READY, ()))
        if work:
            threading.Thread(target=_run_after_ready, args=(work,), name="lscloud-after-ready", daemon=True).start()

    # -- requests --------------------------------------------------------------------------------

    async def handle(self, scope, receive, send) -> None:
        """The ASGI entry point: every HTTP request of the function.

        An answer given before the request body was read (a 413 over the size limit, anything
        decided from the headers alone) closes the connection after draining the body
        (:class:`lscloud.asgi.BodyGuard`), so the caller's pooled connection never holds a
        half-read request."""
        if self._asgi is None:
            self.start(config.environ())
        if scope.get("type") == "http":
            guard = asgi.BodyGuard(scope, receive, send)
            receive, send = guard.receive, guard.send
        await self._asgi(scope, receive, send)


def _ping_nats(rt: runtime.Runtime | None, settings: config.Settings, timeout_s: float = 2.0) -> None:
    """Ask NATS for a PONG: through the bus when the runtime already has one, else a plain
    protocol ping (connect, INFO, PING -> PONG) so readiness never needs a long-lived client."""
    if rt is not None and rt._bus is not None:
        rt._bus.ping()
        return
    last: Exception | None = None
    for url in settings.nats_url.split(","):
        u = urlparse(url.strip())
        try:
            with socket.create_connection((u.hostname, u.port or 4222), timeout=timeout_s) as s:
                s.settimeout(timeout_s)
                f = s.makefile("rb")
                if not f.readline().startswith(b"INFO "):
                    raise ConnectionError("no INFO from server")
                s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
                line = f.readline()
                if not line.startswith(b"PONG"):
                    raise ConnectionError(f"unexpected reply {line[:20]!r}")
                return
        except Exception as exc:  # noqa: BLE001 - try the next server
            last = exc
    raise last or ConnectionError("no NATS url")


IN_PROGRESS_LEASE_S = runonce.EVENT_LEASE_S
"""How long a run of an event handler holds the event past its last renewal: a redelivery that finds
an in-progress record before its end is told to retry later; one past its end is a dead run's and is
taken over."""
IN_PROGRESS_RENEW_S = runonce.EVENT_RENEW_EVERY_S
"""How often the run holding an event renews its hold while its handler runs."""
IN_PROGRESS_MAX_S = runonce.EVENT_HOLD_MAX_S
"""How long a run renews its hold at most (:data:`lscloud.runonce.EVENT_HOLD_MAX_S`)."""

_EVENT_IN_PROGRESS = dict(
    status=503, type="event-in-progress", title="Event in progress",
    detail="This event is being processed by another delivery; retry later.",
    title_vi="Sự kiện đang được xử lý",
    detail_vi="Sự kiện này đang được xử lý bởi một lần gửi khác; vui lòng thử lại sau.")


REPEAT_SAFE = "__lscloud_repeat_safe__"


def repeat_safe(handler: EventHandler) -> EventHandler:
    """Mark an event handler that is idempotent by itself: each of its effects is keyed where it
    lands, by the event id (a partner's webhook, which the partner dedupes by the event id it
    carries) or by what it records (a station's reading, kept once per station and time).
    ``/events`` then runs it on every delivery, without the runtime's events-seen lease (a
    create-only PUT before it and a PUT after it, and the clock sweep's read and delete later). A
    redelivery, or two at once, runs it again: only for a handler whose every effect a repeat
    leaves as it was."""
    setattr(handler, REPEAT_SAFE, True)
    return handler


def _delivered_event(state) -> dict:
    """The CloudEvent of this delivery (binary or structured mode), or a 400 saying what is wrong."""
    try:
        return events.from_http(dict(request.headers), request.get_data(cache=True))
    except ValueError as exc:
        metrics.consumed(None, state.name, None, "malformed")
        why = str(exc)[:500]
        named = _NAMED.search(why)
        # the attribute or header it names ('time', 'ce-subject'), else the body: a bad input's 4xx names its field
        where = named.group(2) if named else "body"
        raise Problem(400, "malformed-event", "Malformed CloudEvent", why,
                      title_vi="Sự kiện không hợp lệ",
                      detail_vi=f"Sự kiện CloudEvent không đúng định dạng ({where}).",
                      errors=[{"field": where, "message": why}]) from None


_NAMED = re.compile(r"(attribute|header) '([A-Za-z0-9_-]{1,64})'")


EVENT_TYPES_KEYWORD = "x-lscloud-event-types"
"""The keyword of a schema under ``schemas/events/`` listing the CloudEvents types whose data it describes."""

PLATFORM_EVENTS = "vn.langson.platform."
"""The prefix of the platform's own event types (the clock's tick), which every function may handle."""

EVENT_SCHEMAS = "lscloud.event_schemas"
"""``app.extensions`` key of the function's :class:`EventSchemas`."""

_CHECKOUT_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
_SAFE_KEY = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_MAX_DATA_ERRORS = 10


class EventSchemas:
    """Which schema each event type's data keeps, from the :data:`EVENT_TYPES_KEYWORD` of every file
    under ``<root>/events/`` (read once, at the start: a type listed twice stops it), and each
    type's validator, built on the type's first event and kept (:class:`lscloud.web.SchemaSet`, the
    dialect of :mod:`lscloud.validation`). A type no file lists is not checked (a foreign event).

    The consumer reads tolerantly (:func:`_tolerant`): a field the schema does not list is let
    through to the handler, unchanged, while every other rule holds. ``additionalProperties: false``
    in ``schemas/events/`` is the producers' contract (their tests hold them to it); at a consumer
    it refused every event of a producer one release ahead (a rolling deploy, a device's new
    firmware, the platform's tick: every function's sweeps stopped) with a 422 no retry fixes."""

    def __init__(self, root: Path, state=None, *, required: bool = True):
        self.root = Path(root).resolve()
        self.by_type: dict[str, str] = {}
        folder = self.root / "events"
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else ():
            name = path.relative_to(self.root).as_posix()
            listed = json.loads(path.read_text(encoding="utf-8")).get(EVENT_TYPES_KEYWORD, [])
            for t in listed:
                if self.by_type.setdefault(t, name) != name:
                    raise RuntimeError(f"event type {t} is listed by two schemas: {self.by_type[t]} and {name}")
        if not self.by_type and required:
            # an image without schemas/ would let every event through unchecked: refuse to start instead
            raise RuntimeError(f"no event schemas under {folder} (files listing {EVENT_TYPES_KEYWORD}): "
                               "a function that handles events needs the repository's schemas/ beside it")
        self._state = state
        self._set = None
        self._validators: dict[str, Any] = {}

    @classmethod
    def of(cls, app: Flask, *, required: bool = True) -> "EventSchemas":
        """The schemas of ``app``'s events: under its ``schemas_dir`` (as its request bodies' are),
        else under the checkout's ``schemas/`` beside the runtime (an app that validates no body).
        Finding none stops the start when ``required`` (the function handles another function's
        events); a function that handles only the platform's own (the clock's tick, for the
        runtime's sweeps) may have no ``schemas/events/`` of its own."""
        state = app_state(app)
        return cls(state.schemas_dir or _CHECKOUT_SCHEMAS, state, required=required)

    def schema_of(self, event_type: str) -> str | None:
        return self.by_type.get(event_type)

    def _validator(self, event_type: str):
        v = self._validators.get(event_type)
        if v is None:
            if self._set is None:
                state = self._state
                # the app's own schema set when it is the same folder: loaded once for bodies and events
                same = state is not None and state.schemas_dir is not None and \
                    Path(state.schemas_dir).resolve() == self.root
                self._set = state.schemas if same else web.SchemaSet(self.root)
            strict = self._set.validator(self.by_type[event_type])   # the contract, the schema itself checked
            v = self._validators[event_type] = _tolerant(type(strict))(
                strict.schema, registry=self._set.registry, format_checker=strict.format_checker)
        return v

    def errors(self, event: Mapping[str, Any]) -> list[dict]:
        """What is wrong with ``event``'s data (``[]``: nothing, or no schema for its type), each as
        ``{"field": "/data/…", "message": …, "message_vi": …}``: the field and the rule it breaks,
        never the value (event data may hold personal data)."""
        if event.get("type") not in self.by_type:
            return []
        validator, data = self._validator(event["type"]), event.get("data")
        if next(validator.iter_errors(data), None) is None:   # the hot path: valid data, one walk
            return []
        out: dict[str, dict] = {}
        for err in validator.iter_errors(data):
            # one per field: jsonschema tells each missing field apart, with the whole list each time
            out.update({e["field"]: e for e in _data_errors(err) if e["field"] not in out})
            if len(out) >= _MAX_DATA_ERRORS:
                break
        return list(out.values())[:_MAX_DATA_ERRORS]


_CLOSED = ("additionalProperties", "unevaluatedProperties")


def _tolerant(strict: type) -> type:
    """``strict`` (the schema set's validator class) with ``additionalProperties: false`` and
    ``unevaluatedProperties: false`` no rule, wherever they sit: in the schema, its ``$defs`` or a
    file it names by ``$ref`` (a validator descends with its own class, so no copy of each schema,
    nor of every file it names, has to be relaxed). Those keywords with a schema still hold (a
    map's values: an environment reading's numbers). The unknown fields stay in the data the
    handler gets: it reads the ones it knows; the dead letter, a retry, and what a handler keeps or
    folds whole (the IOC's facts, a border reading) keep what the producer sent, nothing lost once
    the consumer catches up, and no second walk of the schema to tell which keys it lists."""
    cached = _TOLERANT.get(strict)
    if cached is None:
        from jsonschema import validators

        def opened(rule):
            def check(validator, value, instance, schema):
                if value is not False:
                    yield from rule(validator, value, instance, schema)
            return check

        cached = _TOLERANT[strict] = validators.extend(
            strict, validators={k: opened(strict.VALIDATORS[k]) for k in _CLOSED})
    return cached


_TOLERANT: dict[type, type] = {}


def _data_errors(err) -> list[dict]:
    from jsonschema.exceptions import best_match

    while err.context and err.validator in ("oneOf", "anyOf"):
        err = best_match(err.context)   # the nearest rule the data missed, not "matches no alternative"
    path, rule = list(err.absolute_path), err.validator
    if rule == "required" and isinstance(err.instance, dict):
        return [_data_error(path + [k], "is required", "là bắt buộc") for k in err.validator_value
                if k not in err.instance]
    if rule in ("additionalProperties", "unevaluatedProperties") and isinstance(err.instance, dict):
        schema = err.schema if isinstance(err.schema, dict) else {}
        patterns = [ecma_regex(p) for p in schema.get("patternProperties", {})]
        extras = [k for k in err.instance if k not in schema.get("properties", {})
                  and not any(p.search(k) for p in patterns)]
        out = [_data_error(path + [k], "is not a field of this event's data",
                           "không phải là trường của dữ liệu sự kiện này") for k in extras if _nameable(k)]
        if len(out) < len(extras):   # a key that may be a value (an ID number): its object is named instead
            out.append(_data_error(path, "has a field its schema does not allow", "có trường không được phép"))
        return out
    return [_data_error(path, f"breaks its schema's {rule!r} rule", f"vi phạm quy tắc {rule!r} của lược đồ")]


def _nameable(key) -> bool:
    """Whether a key of the data may be named: an index, or a short name that is not shaped like a
    personal identifier (a map keyed by CCCD would otherwise put one in the answer)."""
    return isinstance(key, int) or bool(_SAFE_KEY.fullmatch(str(key))) and redaction.redact(str(key)) == str(key)


def _data_error(path: list, en: str, vi: str) -> dict:
    pointer = "/data"
    for part in path:
        if not _nameable(part):
            break   # its parent is named, not the key
        pointer += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return {"field": pointer, "message": f"{pointer} {en}.", "message_vi": f"{pointer} {vi}."}


def _check_data(event: dict, refused: Callable[[], None]) -> None:
    """Refuse an event whose data does not match its type's schema, before its handler runs or any
    record of it is written: a 422 naming the fields, dead-lettered at once like a malformed event
    (a 4xx no retry fixes; 422 as for a request body its schema refuses, and as handlers refuse
    data their event's contract lacks), counted as one (outcome ``malformed``)."""
    schemas = current_app.extensions.get(EVENT_SCHEMAS)
    wrong = schemas.errors(event) if schemas is not None else []
    if not wrong:
        return
    refused()
    fields = ", ".join(dict.fromkeys(e["field"] for e in wrong))
    schema = schemas.schema_of(event["type"])
    # as a handler's failure is logged (id, type, status: what an SRE finds a dead letter by), with
    # the fields, never their values: the event's data may hold personal data
    log.warning("event %s (%s) not handled: its data does not match %s at %s (422)", event["id"], event["type"],
                schema, fields)
    raise Problem(422, "invalid-event-data", "Invalid event data",
                  f"The data of this {event['type']} event does not match its schema ({schema}) at: {fields}.",
                  title_vi="Dữ liệu sự kiện không hợp lệ",
                  detail_vi=f"Dữ liệu của sự kiện {event['type']} không khớp với lược đồ ({schema}) tại: {fields}.",
                  errors=wrong)


class _InProgress(Exception):
    """Another run holds the event: a delivery is told to retry later (503), an operator's retry 409.
    ``retry_after_s``: what is left of the hold (at least 1 s), when the holder stops or must renew."""

    def __init__(self, until: float | None = None):
        super().__init__()
        left = (until - time.time()) if isinstance(until, (int, float)) else 1.0
        self.retry_after_s = max(1, min(int(left + 0.999), int(IN_PROGRESS_LEASE_S + 1)))


def _run_event(handlers: Mapping[str, EventHandler], event: dict, headers: Mapping[str, str]) -> str:
    """Handle one event as ``/events`` does: ``"done"``, or ``"duplicate"`` when an earlier run
    completed it. A type with no handler is a 400, data its type's schema refuses a 422
    (:class:`EventSchemas`, checked before any record is written); while another run holds the event,
    :class:`_InProgress`; what the handler raises is raised, and its run's hold released."""
    from .store import leases

    state = app_state()
    subject = metrics.destination(event["type"])

    def outcome(what: str) -> None:
        metrics.consumed(subject, state.name, event["type"], what)

    def failed(exc: BaseException) -> None:
        outcome("failed")
        # the answer's own log line names only the trace: an SRE looking for a dead letter needs the
        # event (its id and type; never its data, which may hold personal data)
        status = getattr(exc, "status", 500)   # a 4xx is dead-lettered at once, a 5xx after its retries
        log.warning("event %s (%s) not handled: %s (%s)", event["id"], event["type"], type(exc).__name__, status)

    handler = handlers.get(event["type"])
    if handler is None:
        # the sender's type (and the subject made of it) is anything anyone posts: one series, not one each
        metrics.consumed(None, state.name, "_OTHER", "unsupported")
        raise Problem(400, "unsupported-event-type", "Unsupported event type",
                      f"This function does not handle events of type {event['type']!r}.",
                      title_vi="Loại sự kiện không được hỗ trợ",
                      detail_vi=f"Chức năng này không xử lý sự kiện loại {event['type']!r}.")
    _check_data(event, lambda: outcome("malformed"))
    if getattr(handler, REPEAT_SAFE, False):
        # its effects dedupe on the event id by themselves: no events-seen lease to take and complete
        try:
            with metrics.processing(event, subject, state.name):
                with telemetry.process_span(event, headers, consumer_group=state.name):
                    handler(event)
        except BaseException as exc:
            failed(exc)
            raise
        outcome("done")
        return "done"
    objects, bucket = store.connection()
    key = runonce.events_seen_key(state.name, event)
    now = time.time()
    facts = {"id": event["id"], "source": event["source"], "type": event["type"]}
    try:
        # while another run holds the event the answer is "retry later", never "duplicate":
        # that run may still fail, and an acked redelivery would lose the event
        held = leases.acquire(objects, bucket, key, {**facts, "status": leases.IN_PROGRESS,
                                                     "received_at": now, "expires_at": now + IN_PROGRESS_LEASE_S})
    except leases.LeaseContended:
        outcome("in_progress")
        raise _InProgress() from None
    if not isinstance(held, leases.Lease):
        if held.get("status") == leases.COMPLETED:
            outcome("duplicate")
            return "duplicate"
        outcome("in_progress")
        raise _InProgress(held.get("expires_at"))
    try:
        # renewed while the handler runs: a slow run keeps the event, a dead one frees it within a lease
        with held.renewed(IN_PROGRESS_LEASE_S, IN_PROGRESS_RENEW_S, at_most_s=IN_PROGRESS_MAX_S):
            with metrics.processing(event, subject, state.name):  # lag, then the run's duration
                with telemetry.process_span(event, headers, consumer_group=state.name):
                    handler(event)
    except BaseException as exc:
        failed(exc)
        held.release()  # the redelivery (5xx/429) runs the handler again
        raise
    outcome("done")
    done = time.time()
    held.complete({**facts, "status": leases.COMPLETED, "done_at": done,
                   "expires_at": done + state.settings.idempotency_ttl_s})
    return "done"


def _add_events_route(app: Flask, handlers: Mapping[str, EventHandler]) -> None:
    @web.raw_body()
    def receive_event():
        """Receive a CloudEvent from Knative Eventing (internal: a delivery token is required)."""
        event = _delivered_event(app_state())
        try:
            status = _run_event(handlers, event, dict(request.headers))
        except _InProgress as held:
            # Retry-After: the hold's end, when its run has finished, renewed it or died (the
            # dispatcher waits that long, and does not count the answer as a failed delivery)
            raise Problem(**_EVENT_IN_PROGRESS, headers={"Retry-After": str(held.retry_after_s)}) from None
        return jsonify({"status": status, "id": event["id"]}), 200

    app.add_url_rule(events.DELIVERY_PATH, "lscloud_events", allow(EVENTING)(receive_event), methods=["POST"])


DEAD_LETTER_LIST_PATH = "/platform/dead-letters"
"""Where the platform's operations staff list a function's dead letters (any function with events)."""


REDRIVES = "lscloud.redrives"
"""``app.extensions[REDRIVES]``: event type -> how the function acts on a dead letter of that type
(:func:`redrive_with`); others are run again through their handler."""


def redrive_with(app: Flask, types: tuple[str, ...], action: Callable[[deadletters.DeadLetter], dict]) -> None:
    """Act on this function's dead letters of ``types`` with ``action`` (:func:`lscloud.deadletters.act`)
    instead of running their handler again: for a function whose right re-drive depends on what
    happened since (the soft ATM does not announce a transfer state that no longer holds)."""
    app.extensions.setdefault(REDRIVES, {}).update(dict.fromkeys(types, action))


class RetryFailed(Conflict):
    type, title, title_vi = "dead-letter-retry-failed", "The event failed again", "Sự kiện lại thất bại"


def _rerun(handlers: Mapping[str, EventHandler]) -> Callable[[deadletters.DeadLetter], dict]:
    def rerun(letter: deadletters.DeadLetter) -> dict:
        event = dict(letter.data["event"])
        if deadletters.finished(event) is not None:
            # a record past its end, not swept yet, would be taken over and the event run again
            return {"action": "retried", "result": "duplicate"}
        try:
            # as a delivery runs it (the events-seen record included), inside the operator's trace
            result = _run_event(handlers, event, {})
        except _InProgress:   # a delivery, or another operator's retry
            raise deadletters.ActionInProgress("This event is being processed right now; ask again in a moment.",
                                               detail_vi="Sự kiện đang được xử lý; vui lòng thử lại sau giây lát.") \
                from None
        except (DomainError, Problem, store.StoreUnavailable):
            raise   # a refusal with its own status (a partner's 422, a store that is down: 503)
        except Exception as exc:  # noqa: BLE001 - answered, logged with the trace; the letter stays open
            log.warning("dead letter %s: event %s failed again: %s", letter.id, event.get("id"),
                        exc.__class__.__name__, exc_info=exc)
            raise RetryFailed(f"The event failed again ({exc.__class__.__name__}); the dead letter stays open.",
                              detail_vi="Sự kiện lại thất bại; thư chết vẫn mở.") from None
        return {"action": "retried", "result": result}

    return rerun


_HANDLERS = "lscloud.event_handlers"


def retry(letter_id: str, *, types: tuple[str, ...] | None = None) -> tuple[deadletters.DeadLetter, bool]:
    """Act on one of this function's dead letters once its cause is fixed, as the calling operator,
    and settle it: ``(letter, replayed)`` (:func:`lscloud.deadletters.act`). The action is the one
    the function registered for the event's type (:func:`redrive_with`), else its handler run
    again as a delivery would. ``types``: only letters of these types (a function's own route)."""
    app = current_app
    redrives, rerun = app.extensions.get(REDRIVES, {}), _rerun(app.extensions[_HANDLERS])
    by = auth.principal().sub

    def action(kept: deadletters.DeadLetter) -> dict:
        return redrives.get(kept.data["event"].get("type"), rerun)(kept)

    settled, replayed = deadletters.act(letter_id, action, by=by, at=statemachine.iso(statemachine.now()),
                                        types=types)
    if not replayed:
        log.info("dead letter %s settled by %s: %s", settled.id, by, settled.data["settled"].get("action"))
    return settled, replayed


def _add_dead_letter_route(app: Flask, handlers: Mapping[str, EventHandler]) -> None:
    """``POST /events/dead-letters``: where the function's Triggers send what they gave up on
    (their ``deadLetterSink``; the local dispatcher likewise), kept once each (:mod:`lscloud.deadletters`);
    ``GET /platform/dead-letters``, their list for operators and auditors; and
    ``POST /platform/dead-letters/<letter>/retry``, an operator's retry once the cause is fixed."""

    @web.raw_body()
    def receive_dead_letter():
        """Receive a dead letter from Knative Eventing (internal: a delivery token is required)."""
        state = app_state()
        event = _delivered_event(state)
        handler = handlers.get(event.get("type"))
        # a handler keeping events-seen records may yet finish the event: its open letter watches the record
        records = handler is not None and not getattr(handler, REPEAT_SAFE, False)
        letter, created = deadletters.keep(event, watch=records)
        # a letter kept settled (its event's record says it was done after all) is no failure: not
        # counted as one, so EventDeadLettered does not fire for it
        done = created and letter.state == deadletters.SETTLED
        metrics.consumed(metrics.destination(event.get("type")), state.name, event.get("type"),
                         deadletters.DONE_AFTER_ALL if done else "dead_letter" if created else "duplicate")
        if done:
            log.info("dead letter %s kept settled: event %s was done after all", letter.id, event.get("id"))
        elif created:
            # the event id and type only: the error text is the subscriber's answer, kept in the record
            log.warning("dead letter %s kept: event %s of type %s (status %s)", letter.id, event.get("id"),
                        event.get("type"), letter.data.get("status"))
        return jsonify({"status": "kept" if created else "duplicate", "id": letter.id}), 200

    app.add_url_rule(events.DEAD_LETTER_PATH, "lscloud_dead_letters", allow(EVENTING)(receive_dead_letter),
                     methods=["POST"])

    @web.query_params(*web.page_params(default_limit=100, max_limit=1000),
                      ("state", "Only open (not acted on yet) or settled ones",
                       {"type": "string", "enum": [deadletters.OPEN, deadletters.SETTLED]}))
    def list_dead_letters():
        """Events this function's subscriptions gave up on, oldest first.

        Every function's, for the platform's operations staff: the event's attributes and why it
        failed, never its data."""
        found = deadletters.page(g.query["limit"], g.query["page_token"] or None, state=g.query["state"])
        return jsonify({"items": [deadletters.summary(letter) for letter in found], "total": len(found),
                        "next_page_token": found.page_token})

    app.add_url_rule(DEAD_LETTER_LIST_PATH, "lscloud_dead_letters_list",
                     allow("operator", "auditor")(list_dead_letters), methods=["GET"])

    def retry_dead_letter(letter: str):
        """Run a dead-lettered event again, once its cause is fixed, and settle the letter.

        The event goes through the function's handler as a delivery would: one it completed since is
        settled ``duplicate``. The settlement records who and the result; if the event fails again
        the letter stays open. Repeating the call answers the settlement."""
        from .idempotency import REPLAYED_HEADER

        settled, replayed = retry(letter)
        return jsonify(deadletters.summary(settled)), 200, {REPLAYED_HEADER: "true"} if replayed else {}

    app.extensions[_HANDLERS] = handlers
    app.add_url_rule(DEAD_LETTER_LIST_PATH + f"/<{deadletters.LETTER}>/retry", "lscloud_dead_letters_retry",
                     allow("operator")(retry_dead_letter), methods=["POST"])


def _package_of(factory: Callable) -> str:
    module = getattr(factory, "__module__", "") or ""
    return module.rpartition(".")[0] or module


def run_once_records(app: Flask, handlers: Mapping[str, EventHandler], package: str) -> list[str]:
    """What run-once records a function keeps (:mod:`lscloud.runonce`), as reasons: idempotent
    routes, partner routes (nonces), event handlers not :func:`repeat_safe` (events-seen), event
    handlers at all (their dead letters), models with a TTL in its package."""
    from .auth import access_of

    views = [app.view_functions[r.endpoint] for r in app.url_map.iter_rules() if r.endpoint != "static"]
    why = []
    if any(getattr(v, "__lscloud_idempotent__", False) for v in views):
        why.append("idempotency records")
    if any((a := access_of(v)) is not None and a.partner for v in views):
        why.append("partner nonces")
    if any(not getattr(h, REPEAT_SAFE, False) for h in handlers.values()):
        why.append("events-seen records")
    if handlers:   # its subscriptions' dead letters come to its own sink (a year each, lscloud.deadletters)
        why.append(f"dead letters ({deadletters.DeadLetter.Meta.table}/)")
    why += [f"{k.what} ({k.prefix})" for k in runonce.model_kinds(package)]
    return why


def uses_outbox(package: str) -> bool:
    """Whether the function's modules publish through :mod:`lscloud.outbox`, themselves or by an
    :class:`~lscloud.aggregate.Aggregate` (every committed write's events): what NATS did not confirm
    waits there for the tick's :func:`flush_outbox`."""
    import sys

    from . import aggregate, outbox

    for name, module in list(sys.modules.items()):
        if module is None or not (name == package or name.startswith(package + ".")):
            continue
        for value in vars(module).values():
            if value is outbox or value is aggregate.Aggregate or isinstance(value, aggregate.Aggregate):
                return True
    return False


def _with_housekeeping(handlers: Mapping[str, EventHandler]) -> dict[str, EventHandler]:
    """The function's handlers, with the runtime's own work on the platform clock's tick: after the
    function's tick handler (if any), its expired run-once records are swept (:mod:`lscloud.runonce`),
    creates cut off before their round are finished (:func:`finish_unfinished_creates`) and the
    events its outbox keeps are published again (:func:`flush_outbox`). Only a function that
    keeps such records or publishes through the outbox gets it; it must subscribe to the tick in its
    func.yaml. The tick is :func:`repeat_safe` when the function's own tick handler is (or it has none)."""
    from .clock import TICKED, tick_at

    theirs = handlers.get(TICKED)

    def on_tick(event: dict) -> None:
        if theirs is not None:
            theirs(event)
        at = tick_at(event)
        sweep_expired(at.timestamp() if at else None)
        finish_unfinished_creates(at.timestamp() if at else None)
        flush_outbox()

    if theirs is None or getattr(theirs, REPEAT_SAFE, False):
        # the housekeeping is repeat-safe by itself (a sweep deletes a record only If-Match the
        # version it read; an event published again keeps its id, which JetStream dedupes): a tick
        # then needs no events-seen record, one created, completed and swept a minute, every day
        repeat_safe(on_tick)
    return {**handlers, TICKED: on_tick}


def finish_unfinished_creates(tick_at: float | None = None) -> dict | None:
    """Finish the rounds of creates cut off between their record and its round, as of the tick's
    minute ``tick_at`` (:func:`lscloud.aggregate.finish_unfinished`; repeat-safe). Never raises: what
    is left waits for the next tick."""
    from . import aggregate

    try:
        return aggregate.finish_unfinished(tick_at)
    except Exception as exc:  # noqa: BLE001 - housekeeping must not fail the tick
        log.warning("finishing unfinished creates failed: %s", exc.__class__.__name__)
        return None


def flush_outbox() -> dict | None:
    """Publish again the events NATS did not confirm (:func:`lscloud.outbox.flush`). Never raises:
    what is left waits for the next tick."""
    from . import outbox

    try:
        flushed = outbox.flush()
    except Exception as exc:  # noqa: BLE001 - housekeeping must not fail the tick
        log.warning("flushing the outbox failed: %s", exc.__class__.__name__)
        return None
    if flushed["sent"] or flushed["failed"]:
        log.info("outbox: %d event(s) published again, %d still kept", flushed["sent"], flushed["failed"])
    return flushed


def sweep_expired(tick_at: float | None = None) -> runonce.Report | None:
    """Delete this function's expired run-once records (nonces, idempotency and events-seen records,
    TTL model items) in its bucket, of the kinds due a listing at the tick's minute ``tick_at``
    (:func:`lscloud.runonce.due_kinds`; default now). Never raises: what is left waits for the next
    tick."""
    state = app_state()
    objects, bucket = store.connection()
    due = runonce.due_kinds(bucket, state.settings, tick_at)
    if not due:
        return None
    try:
        report = runonce.sweep(objects, bucket, state.settings, kinds_=due)
    except Exception as exc:  # noqa: BLE001 - housekeeping must not fail the tick
        log.warning("sweeping expired records in %s failed: %s", bucket, exc.__class__.__name__)
        return None
    if not report.exhausted:   # a backlog left: listed again at the next tick
        runonce.listed(due, bucket, tick_at)
    return report


def _check_needs(needs) -> tuple[str, ...]:
    if isinstance(needs, str):
        raise TypeError(f"needs must be a tuple of names, e.g. ({needs!r},)")
    needs = tuple(needs)
    unknown = [n for n in needs if n not in DEPENDENCIES]
    if unknown:
        raise ValueError(f"unknown dependencies {unknown}: needs may name {', '.join(DEPENDENCIES)}")
    return needs


READINESS_CHECKS = "lscloud.readiness"
"""``app.extensions`` key of a function's own readiness checks (see :meth:`Function.ready`)."""

AFTER_READY = "lscloud.after_ready"
"""``app.extensions`` key of work (callables) a function defers until its replica first answers
ready: run once, one after the other, in a background thread. Started with the app instead, such work
(an index the first requests can do without, built in seconds) competes with the start for the
interpreter and puts readiness off by as much; a request that needs it before it is done builds it
itself (the work must allow that: idempotent, under its own lock). Never started in a process that
is never asked for its readiness (a test's app): first use builds it there."""


def _run_after_ready(work: list[Callable[[], None]]) -> None:
    for job in work:
        try:
            job()
        except Exception:  # noqa: BLE001 - deferred work: first use does it instead, the replica serves on
            log.exception("work after readiness failed: %s", getattr(job, "__qualname__", job))


def function(app_factory: Callable[..., Flask], *, events: Mapping[str, EventHandler] | None = None,
             needs: tuple[str, ...] = DEPENDENCIES) -> Callable[[], Function]:
    """The ``new`` a function package exports: ``new = knative.function(create_app, events={...})``.

    ``app_factory`` is called with the Settings (if it takes an argument) when Knative starts
    the instance; ``events`` maps CloudEvent types to ``handler(event_dict)``.

    A function that keeps run-once records (:func:`run_once_records`: idempotent or partner routes,
    events, models with a TTL) also handles the platform clock's tick
    (``vn.langson.platform.clock.ticked.v1``, after its own handler for it if it has one): the runtime
    deletes its expired records then. Such a function subscribes to the tick in its func.yaml.

    ``needs`` names the dependencies ``ready()`` waits for, from :data:`DEPENDENCIES`. The
    default is both, ``("s3", "nats")``: right for any function that handles events or publishes.
    A function that never touches the bus says so, ``needs=("s3",)`` (the directory), and stays
    ready while NATS is down; it must then not publish. ``needs=()`` is ready once started
    (not allowed with ``events``: ``/events`` keeps its dedupe records in the object store).
    """
    needs = _check_needs(needs)
    if events and "s3" not in needs:
        raise ValueError("a function with events needs 's3': /events keeps its dedupe records there")

    def new() -> Function:
        return Function(app_factory, events, needs)

    new.__name__ = "new"  # func-python's serve() dispatches on the name
    new.__qualname__ = "new"
    return new
