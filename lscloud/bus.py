"""CloudEvents on NATS JetStream: publish with server-side dedupe and trace propagation.

Every domain event goes to the stream ``settings.stream`` (subjects ``lscloud.>``) on the
subject derived from its type (:func:`lscloud.events.subject_for`), with ``Nats-Msg-Id`` = its
source and id (:func:`message_id`), so a publish retried within the stream's two-minute duplicate
window is stored once.
That makes retrying safe, and :meth:`Bus.publish` retries through a NATS restart until its
timeout, then raises :class:`BusUnavailable` — it never hangs.

:class:`Bus` is the asyncio client; :class:`SyncBus` is the facade for sync code (Flask
handlers): one background event loop per process carries every SyncBus.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import ssl
import threading
from typing import Any, Awaitable, Callable, Mapping

from . import nats_import  # noqa: F401 - first: nats-py without aiohttp (see there)

import nats
import nats.errors
import nats.js.errors
from nats.js import api as js_api

from . import errors, events, metrics, telemetry

STREAM_SUBJECTS = ("lscloud.>",)
DUPLICATE_WINDOW_S = 120.0

# JetStream API error codes we act on
_STREAM_NAME_IN_USE = 10058
_SUBJECTS_OVERLAP = 10065
_STREAM_MISMATCH = 10060
_WRONG_LAST_SUBJECT_SEQUENCE = 10071


class BusError(RuntimeError):
    """The bus refused an operation (bad stream set-up, wrong stream for a subject, ...)."""


def _shown(url: str) -> str:
    """``url`` without its user and password (``nats://user:pass@host``): the errors that name it are
    logged and recorded on spans."""
    def one(server: str) -> str:
        scheme, sep, rest = server.strip().partition("://")
        return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else server.strip().rpartition("@")[2]

    return ",".join(one(server) for server in url.split(","))


class BusUnavailable(BusError):
    """NATS could not be reached, or did not confirm, within the time allowed."""


# a view that needed NATS (a partner nonce, a publish) and could not reach it: retry later, as for
# the object store; registered here, so an app that never imports the bus never loads nats-py
errors.register(BusUnavailable, errors.retry_later)


class SubjectNotEmpty(BusError):
    """A publish expecting its subject to hold nothing yet found a message there (a key's create).

    ``after_retry``: an earlier attempt of the same publish may have been stored (its answer was
    lost), so the message there may be this publish's own."""

    def __init__(self, message: str, *, after_retry: bool = False):
        super().__init__(message)
        self.after_retry = after_retry


def stream_config(name: str, subjects: tuple[str, ...] | list[str] = STREAM_SUBJECTS, *,
                  max_msg_size: int = -1) -> js_api.StreamConfig:
    """The JetStream stream the runtime expects: file storage, 2-minute dedupe window;
    ``max_msg_size`` bytes at most per message (-1: the server's limit)."""
    return js_api.StreamConfig(name=name, subjects=list(subjects), storage=js_api.StorageType.FILE,
                               retention=js_api.RetentionPolicy.LIMITS,
                               duplicate_window=DUPLICATE_WINDOW_S, max_msg_size=max_msg_size)


class ClientTLS:
    """The TLS context of this process's NATS connections: the servers verified against
    ``nats_ca_file`` and this process's client certificate presented (NATS maps it to a user and that
    user's permissions). cert-manager renews the certificate files in place; :meth:`refresh` loads
    the new ones into the same context, which the client reuses for its next reconnect."""

    def __init__(self, settings):
        self.settings = settings
        self.context = ssl.create_default_context(cafile=settings.nats_ca_file or None)
        self._loaded: float | None = None
        self.refresh()

    def _stamp(self) -> float | None:
        import os

        try:
            return max(os.stat(p).st_mtime for p in (self.settings.nats_cert_file, self.settings.nats_key_file))
        except (OSError, ValueError):
            return None

    def refresh(self) -> bool:
        """Load the certificate again if its files changed; True when it did."""
        if not self.settings.nats_cert_file:
            return False
        stamp = self._stamp()
        if stamp is None or stamp == self._loaded:
            return False
        self.context.load_cert_chain(self.settings.nats_cert_file, self.settings.nats_key_file)
        self._loaded = stamp
        return True


def tls_context(settings) -> ClientTLS | None:
    """None when no CA or client certificate is configured (the local cloud)."""
    if not (settings.nats_ca_file or settings.nats_cert_file):
        return None
    return ClientTLS(settings)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (asyncio.TimeoutError, nats.errors.TimeoutError, nats.errors.ConnectionClosedError,
                        nats.errors.ConnectionReconnectingError, nats.errors.OutboundBufferLimitError,
                        nats.errors.NoServersError, nats.errors.StaleConnectionError,
                        nats.js.errors.NoStreamResponseError, nats.js.errors.ServiceUnavailableError,
                        ConnectionError, OSError)):
        return True
    return isinstance(exc, nats.js.errors.APIError) and exc.code in (503, 504)


class Bus:
    """Asyncio JetStream client for one event loop.

    ``publish_timeout`` bounds a publish including its retries; ``connect_timeout`` bounds
    each attempt to (re)connect when no connection exists yet. Once connected, nats-py
    reconnects by itself forever (``max_reconnect_attempts=-1``).
    """

    def __init__(self, settings, *, publish_timeout: float = 10.0, connect_timeout: float = 5.0,
                 name: str | None = None, create_stream: bool = True,
                 on_reconnected: Callable[[], Awaitable[None]] | None = None):
        """``on_reconnected``: awaited on the client's loop each time nats-py has reconnected (and
        resubscribed), for a caller whose requests to the server died with the old connection."""
        self.settings = settings
        self.on_reconnected = on_reconnected
        self.publish_timeout = publish_timeout
        self.connect_timeout = connect_timeout
        self.name = name or settings.service
        self.create_stream = create_stream
        self._nc: nats.NATS | None = None
        self._js = None
        self._connect_lock: asyncio.Lock | None = None
        self._ensured: set[str] = set()   # streams this client created or brought to its config
        self._tls = tls_context(settings)

    # --- connection ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def disconnected(self) -> bool:
        """The connection was made and is lost now (nats-py reconnects in the background): a publish
        would only wait for it. False before a first connection, which a publish tries to make."""
        nc = self._nc
        return nc is not None and not nc.is_connected and not nc.is_closed

    async def connect(self, timeout: float | None = None) -> None:
        """Connect if not connected yet (BusUnavailable when NATS does not answer in time)."""
        if self._nc is not None and not self._nc.is_closed:
            return
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._nc is not None and not self._nc.is_closed:
                return
            nc = nats.NATS()

            async def quiet(*_args):  # nats-py logs every failed reconnect attempt otherwise
                return None

            try:
                if self._tls is not None:
                    self._tls.refresh()
                await asyncio.wait_for(nc.connect(
                    servers=self.settings.nats_url.split(","), name=self.name,
                    tls=self._tls.context if self._tls is not None else None,
                    allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                    connect_timeout=max(1, int(self.connect_timeout)), ping_interval=5, max_outstanding_pings=2,
                    error_cb=quiet, disconnected_cb=quiet, reconnected_cb=self.on_reconnected or quiet,
                    closed_cb=quiet,
                ), timeout or self.connect_timeout)
            except (asyncio.TimeoutError, OSError, nats.errors.Error) as exc:
                try:
                    await nc.close()
                except Exception:  # pragma: no cover - best effort clean-up of a half-open client
                    pass
                raise BusUnavailable(f"NATS at {_shown(self.settings.nats_url)} is not reachable: {exc or type(exc).__name__}") from None
            self._nc = nc
            self._js = nc.jetstream()

    @property
    def nc(self) -> nats.NATS:
        if self._nc is None:
            raise BusUnavailable("the bus is not connected")
        return self._nc

    @property
    def js(self):
        if self._js is None:
            raise BusUnavailable("the bus is not connected")
        return self._js

    async def ping(self, timeout: float = 2.0) -> None:
        """Raise BusUnavailable unless NATS and JetStream answer within ``timeout``."""
        if self._tls is not None:
            self._tls.refresh()  # readiness runs this often: a renewed certificate is picked up here
        await self.connect(timeout)
        if not self.nc.is_connected:
            raise BusUnavailable(f"NATS at {_shown(self.settings.nats_url)} is not connected (reconnecting)")
        try:
            await self.nc.flush(timeout=max(1, int(timeout)))
            await asyncio.wait_for(self.js.account_info(), timeout)
        except Exception as exc:
            raise BusUnavailable(f"NATS at {_shown(self.settings.nats_url)} does not answer: {exc or type(exc).__name__}") from None

    async def close(self, timeout: float = 5.0, *, drain: bool = True) -> None:
        """Drain (finish in-flight publishes and subscriptions), then close.

        ``drain=False`` only flushes what is buffered (acks) and closes: for a consumer whose
        pull requests are still open on the server, which draining would wait out.
        """
        nc, self._nc, self._js = self._nc, None, None
        if nc is None or nc.is_closed:
            return
        try:
            if nc.is_connected:
                await asyncio.wait_for(nc.drain() if drain else nc.flush(), timeout)
        except Exception:
            pass
        finally:
            if not nc.is_closed:
                await nc.close()

    # --- streams ---------------------------------------------------------------------------

    async def ensure_stream(self, name: str | None = None, subjects: tuple[str, ...] | list[str] = STREAM_SUBJECTS,
                            *, max_msg_size: int = -1) -> None:
        """Create the stream, or bring an existing one to our config. Safe to race."""
        name = name or self.settings.stream
        await self.connect()
        config = stream_config(name, subjects, max_msg_size=max_msg_size)
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code == _STREAM_NAME_IN_USE:  # exists with another config: update it
                await self.js.update_stream(config)
            elif exc.err_code == _SUBJECTS_OVERLAP:
                raise BusError(f"cannot create stream {name} on {list(subjects)}: another stream already holds "
                               f"these subjects ({exc.description})") from None
            else:
                raise BusError(f"cannot create stream {name}: {exc.description}") from None
        self._ensured.add(name)

    async def ensure_key_value(self, config: js_api.StreamConfig) -> None:
        """Create a key-value bucket's stream (``config``, e.g. :func:`lscloud.nonces.bucket_config`),
        or lengthen an existing one's ``max_age`` to ``config``'s: never shorten what another process
        with a longer need relies on. Safe to race."""
        await self.connect()
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != _STREAM_NAME_IN_USE:
                raise BusError(f"cannot create stream {config.name}: {exc.description}") from None
            held = (await self.js.stream_info(config.name)).config
            if (held.max_age or 0) and (not config.max_age or held.max_age < config.max_age):
                held.max_age = config.max_age
                await self.js.update_stream(held)
        self._ensured.add(config.name)

    async def create_key(self, bucket: str, key: str, value: bytes, *, timeout: float | None = None,
                         create: js_api.StreamConfig | None = None) -> bool:
        """Put ``key`` in the key-value ``bucket`` only if it holds nothing (as ``nats kv create``):
        True when this call wrote it, False when it was there already. One winner among racers.

        Each call's write carries an id of its own (``Nats-Msg-Id``): when an attempt's answer was lost
        and its retry finds the key taken, the key's message is read (a direct get) and the write is
        this call's only if it carries that id."""
        import uuid

        subject, stream, write = f"$KV.{bucket}.{key}", f"KV_{bucket}", uuid.uuid4().hex
        headers = {"Nats-Expected-Last-Subject-Sequence": "0", "Nats-Msg-Id": write}
        try:
            await self.publish_message(subject, value, headers, stream=stream, timeout=timeout, create=create)
        except SubjectNotEmpty as exc:
            if not exc.after_retry:
                return False
            # JetStream checks the expected sequence before the message id, so a lost answer's retry
            # is refused like someone else's write: the key's own message says whose it is
            held = await self.js.get_msg(stream, subject=subject, direct=True)
            return (held.headers or {}).get("Nats-Msg-Id") == write
        return True

    async def delete_stream(self, name: str | None = None) -> bool:
        """Delete a stream if it exists (tests, `lscloud reset`)."""
        await self.connect()
        try:
            return await self.js.delete_stream(name or self.settings.stream)
        except nats.js.errors.NotFoundError:
            return False

    # --- reading the stream again ------------------------------------------------------------

    async def replay(self, types, *, batch: int = 500, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Every event of ``types`` still in the stream, from its first message, in stream order.

        A read-only, unacknowledged ephemeral consumer (deleted afterwards, dropped by the server
        if this process dies): a projection rebuilt from it can be compared with the live one.
        Events whose type is not in ``types`` (another version on the same subject) are skipped; a
        stream that does not exist yet holds none.
        """
        import uuid

        await self.connect()
        wanted = set(types)
        subjects = sorted({events.subject_for(t) for t in wanted})
        stream = self.settings.stream
        name = f"replay-{uuid.uuid4().hex[:16]}"
        cfg = js_api.ConsumerConfig(
            name=name, deliver_policy=js_api.DeliverPolicy.ALL, ack_policy=js_api.AckPolicy.NONE,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
            inactive_threshold=30.0, mem_storage=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            info = await self.js.add_consumer(stream, cfg)
        except nats.js.errors.NotFoundError:
            return []   # no stream yet: nothing was ever published, so there is nothing to replay
        out: list[dict[str, Any]] = []
        try:
            pending = info.num_pending
            psub = await self.js.pull_subscribe_bind(consumer=name, stream=stream)
            while pending > 0:
                if loop.time() > deadline:
                    raise BusUnavailable(f"replaying {stream} took longer than {timeout:g}s")
                try:
                    msgs = await psub.fetch(min(batch, pending), timeout=5)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    continue
                for msg in msgs:
                    pending = msg.metadata.num_pending
                    try:
                        event = events.from_structured(msg.data)
                    except ValueError:
                        continue  # not a CloudEvent: nothing a projection could count
                    if event.get("type") in wanted:
                        out.append(event)
            await psub.unsubscribe()
        finally:
            try:
                await self.js.delete_consumer(stream, name)
            except Exception:  # noqa: BLE001 - the server drops it after inactive_threshold anyway
                pass
        return out

    # --- publishing ------------------------------------------------------------------------

    async def publish(self, event: Mapping[str, Any], *, timeout: float | None = None) -> int:
        """Publish ``event`` to its subject; returns the JetStream sequence of the stored copy.

        A duplicate (same id within the dedupe window) returns the sequence of the first copy.
        """
        subject, body, headers = prepare(event)
        # the publisher's own service: in a function process that is the process's; in the local
        # cloud's supervisor the clock and the devices relay are services of their own
        with telemetry.send_span(event, subject, tracer_=telemetry.service_tracer(self.settings.service)) as span, \
                metrics.publishing(subject):
            telemetry.inject(headers)
            ack = await self.publish_message(subject, body, headers, timeout=timeout)
            span.set_attribute("messaging.nats.stream.sequence", ack.seq)
            return ack.seq

    async def publish_message(self, subject: str, body: bytes, headers: dict[str, str], *,
                              stream: str | None = None, timeout: float | None = None,
                              create: js_api.StreamConfig | None = None) -> js_api.PubAck:
        """Publish raw bytes to JetStream, retrying until ``timeout`` (the headers carry a
        ``Nats-Msg-Id``, so a retry of a publish the server did store is stored once).

        When no stream takes ``subject``: the events' stream is created (as :meth:`ensure_stream`), or
        ``create`` is (:meth:`ensure_key_value`), once per client and only if it may create streams.
        :class:`SubjectNotEmpty` when the headers expect an empty subject and it is not."""
        loop = asyncio.get_running_loop()
        timeout = self.publish_timeout if timeout is None else timeout
        stream = stream or self.settings.stream
        deadline = loop.time() + timeout
        last: BaseException | None = None
        pause = 0.1
        sent = retried = False   # sent: an attempt went out and its answer was lost (it may be stored)
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                hint = ""
                if isinstance(last, nats.js.errors.NoStreamResponseError):
                    hint = f" (no stream takes {subject}: is stream {stream} created?)"
                raise BusUnavailable(f"publish to {subject} not confirmed within {timeout:g}s: "
                                     f"{last or 'timed out'}{hint}")
            try:
                await self.connect(min(remaining, self.connect_timeout))
                retried, sent = sent, True
                return await self.js.publish(subject, body, timeout=max(0.05, min(remaining, 2.0)),
                                             stream=stream, headers=dict(headers))
            except BusUnavailable as exc:
                last = exc
            except nats.js.errors.NoStreamResponseError as exc:
                last, sent = exc, retried   # nobody took it: not stored
                ours = stream == self.settings.stream or (create is not None and create.name == stream)
                if self.create_stream and ours and stream not in self._ensured:
                    try:
                        await (self.ensure_stream() if create is None else self.ensure_key_value(create))
                        continue
                    except BusError as create_exc:
                        last = create_exc
            except nats.js.errors.APIError as exc:
                if exc.err_code == _WRONG_LAST_SUBJECT_SEQUENCE:
                    raise SubjectNotEmpty(f"{subject} already holds a message", after_retry=retried) from None
                if exc.err_code == _STREAM_MISMATCH:
                    raise BusError(f"subject {subject} belongs to another stream than {stream}: {exc.description}") from None
                if not _retryable(exc):
                    raise BusError(f"publish to {subject} refused: {exc.description}") from None
                last = exc
            except Exception as exc:
                if not _retryable(exc):
                    raise
                last = exc
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, 1.0)


def message_id(event: Mapping[str, Any]) -> str:
    """The ``Nats-Msg-Id`` of an event: its source and its id, the pair CloudEvents makes unique."""
    return f"{event['source']} {event['id']}"


def prepare(event: Mapping[str, Any]) -> tuple[str, bytes, dict[str, str]]:
    """Subject, structured JSON body and NATS headers (without trace context) for an event."""
    checked = events.validate(event)
    subject = events.subject_for(checked["type"])
    body = json.dumps(checked, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {
        # CloudEvents: "source + id is unique for each distinct event"; JetStream dedupes on this header
        # alone, across the stream's every producer: the id by itself dropped another source's event
        # that happened to share it (a market lot's and a community activity's client-chosen ids)
        "Nats-Msg-Id": message_id(checked),
        "ce-id": checked["id"],
        "ce-type": checked["type"],
        "ce-source": checked["source"],
        "content-type": events.STRUCTURED_CONTENT_TYPE,
    }
    return subject, body, headers


class _LoopThread:
    """The process's one background event loop for sync callers."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._thread is None or not cls._thread.is_alive():
                loop = asyncio.new_event_loop()
                started = threading.Event()

                def run():
                    asyncio.set_event_loop(loop)
                    loop.call_soon(started.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name="lscloud-bus", daemon=True)
                thread.start()
                started.wait()
                cls._loop, cls._thread = loop, thread
            return cls._loop


class SyncBus:
    """Blocking facade over :class:`Bus` for sync code; safe to share between threads."""

    def __init__(self, settings, *, publish_timeout: float = 10.0, connect_timeout: float = 5.0):
        self.settings = settings
        self.publish_timeout = publish_timeout
        self._bus = Bus(settings, publish_timeout=publish_timeout, connect_timeout=connect_timeout)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def disconnected(self) -> bool:
        """:attr:`Bus.disconnected`: the client knows NATS is not there now (reconnecting)."""
        return self._bus.disconnected

    def start(self) -> "SyncBus":
        """Attach to the background loop and try to connect (failure is reported by the next call)."""
        self._loop = _LoopThread.loop()
        try:
            self._run(self._bus.connect(), self._bus.connect_timeout)
        except BusUnavailable:
            pass
        return self

    def _run(self, coro, timeout: float):
        if self._loop is None:
            self.start()
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout + 2.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BusUnavailable(f"NATS at {_shown(self.settings.nats_url)} did not answer within {timeout:g}s") from None

    def ensure_stream(self, name: str | None = None, subjects: tuple[str, ...] | list[str] = STREAM_SUBJECTS,
                      *, max_msg_size: int = -1) -> None:
        """Create or update the stream (idempotent, safe when several processes race)."""
        self._run(self._bus.ensure_stream(name, subjects, max_msg_size=max_msg_size), self._bus.connect_timeout + 10)

    def delete_stream(self, name: str | None = None) -> bool:
        return self._run(self._bus.delete_stream(name), self._bus.connect_timeout + 10)

    def ensure_key_value(self, config: js_api.StreamConfig) -> None:
        """:meth:`Bus.ensure_key_value` from sync code."""
        self._run(self._bus.ensure_key_value(config), self._bus.connect_timeout + 10)

    def create_key(self, bucket: str, key: str, value: bytes, *, timeout: float | None = None,
                   create: js_api.StreamConfig | None = None) -> bool:
        """:meth:`Bus.create_key` from sync code: True when this call wrote ``key``, False when it was there."""
        from opentelemetry.trace import SpanKind

        timeout = self.publish_timeout if timeout is None else timeout
        # in the caller's thread: a child of its request's span (the key is not named: it holds ids)
        with telemetry.service_tracer(self.settings.service).start_as_current_span(
                "KV.create", kind=SpanKind.CLIENT,
                attributes={"db.system.name": "nats", "db.operation.name": "create", "db.namespace": bucket}) as span:
            created = self._run(self._bus.create_key(bucket, key, value, timeout=timeout, create=create), timeout)
            span.set_attribute("lscloud.kv.created", created)
            return created

    def publish(self, event: Mapping[str, Any], *, timeout: float | None = None) -> int:
        """Publish and wait for the JetStream ack; returns the stream sequence.

        Raises BusUnavailable when NATS does not confirm within ``timeout`` (default
        ``publish_timeout``), ValueError for a malformed event.
        """
        timeout = self.publish_timeout if timeout is None else timeout
        subject, body, headers = prepare(event)
        # the span and the injected context belong to the caller's thread (its request's trace),
        # the span to the publisher's service (Bus.publish)
        with telemetry.send_span(event, subject, tracer_=telemetry.service_tracer(self._bus.settings.service)) as span, \
                metrics.publishing(subject):
            telemetry.inject(headers)
            ack = self._run(self._bus.publish_message(subject, body, headers, timeout=timeout), timeout)
            span.set_attribute("messaging.nats.stream.sequence", ack.seq)
            return ack.seq

    def replay(self, types, *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """:meth:`Bus.replay` from sync code: the stored events of ``types``, oldest first."""
        return self._run(self._bus.replay(types, timeout=timeout), timeout + self._bus.connect_timeout)

    def ping(self, timeout: float = 2.0) -> None:
        """Raise BusUnavailable unless NATS (with JetStream) answers now."""
        self._run(self._bus.ping(timeout), timeout + self._bus.connect_timeout)

    def close(self) -> None:
        """Drain pending publishes and close the connection (the shared loop keeps running)."""
        if self._loop is None:
            return
        try:
            self._run(self._bus.close(), 5.0)
        except BusUnavailable:
            pass


def _as_admin(settings, work: Callable[[Bus], Awaitable[Any]]) -> None:
    """Run ``work(bus)`` on a connection of its own, from sync code with no loop running."""

    async def run():
        bus = Bus(settings, name=f"{settings.service}-admin", create_stream=False)
        await bus.connect()
        try:
            await work(bus)
        finally:
            await bus.close()

    asyncio.run(run())


def delete_streams(settings, names: list[str] | tuple[str, ...]) -> None:
    """Delete streams if they exist, from sync code with no loop running (test teardown, reset)."""

    async def work(bus: Bus) -> None:
        for name in names:
            await bus.delete_stream(name)

    _as_admin(settings, work)


def delete_consumer(settings, stream: str, name: str) -> None:
    """Delete the consumer ``name`` of ``stream``, from sync code with no loop running (tests that
    take a consumer away, an operator's repair)."""
    _as_admin(settings, lambda bus: bus.js.delete_consumer(stream, name))
