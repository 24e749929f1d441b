"""Lingering JetStream pulls that end early when asked: all at once when their consumers stop, and
made again when the connection comes back.

A lingering pull returns the moment a message exists (a batch pull too: it brings what is there
then), so its length only sets how often an idle consumer asks again: 30 s, the expiry nats.go's
``Consume`` uses by default (at 1 s, the 47 subscriptions of `lscloud up` kept NATS busy with 47
pulls a second, idle). Two things must then not wait for a pull to expire:

- **a reconnect**: a pull lives in the server that held the consumer when it was made; if that
  server restarted, the pull died with it. Give :meth:`Pulls.reconnected` to
  ``Bus(on_reconnected=)``: once nats-py has reconnected and resubscribed, every waiting pull is
  made again;
- **stopping**: :meth:`Pulls.stop` ends every waiting pull at once. A message that comes for an
  ended pull is never acked, so JetStream delivers it again after the consumer's ``ack_wait``.

An ended pull may still be open on a server that did not restart, and a message may come for it
later; the next pull gets it. So a consumer pulls either one message at a time (:meth:`Pulls.next`)
or in batches (:meth:`Pulls.take`), never both. A batch pull (nats-py 2.16) that gets the message
meant for an ended batch pull returns when that pull's end arrives (a status message, sent when a
batch pull ends short of its size); an ended pull of one ends without one, so a batch pull that
gets its message waits for its own pull to expire. Each kind alone is tested.

A pull that fails goes to :meth:`Pulls.failed`, the one answer for both kinds: pause, and make the
consumer again if it vanished. Made again, a consumer starts just after the ack floor it had when
last asked (:class:`AckFloors`): from the stream's start it would deliver again all the stream holds,
and from its new messages (``DeliverPolicy.NEW``) it would lose those published while it was gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, Awaitable, Callable

from . import nats_import  # noqa: F401 - first: nats-py without aiohttp (see there)

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg

log = logging.getLogger("lscloud.pulls")

WAIT_S = 30.0
"""How long a pull lingers; see the module's docstring."""

PAUSE_S = 0.5
"""How long a consumer waits after a failed pull before it pulls again (or makes its consumer again)."""

FLOOR_EVERY_S = 10.0
"""How often, at most, a consumer that is receiving messages asks its ack floor (:class:`AckFloors`)."""

GONE = (nats.js.errors.NotFoundError, nats.js.errors.ServiceUnavailableError)
"""What a pull on a consumer that no longer exists raises: "no responders" (503) once the server
dropped it, or not found."""


class Pulls:
    """The lingering pulls of one event loop's consumers; every method runs on that loop."""

    def __init__(self, wait_s: float = WAIT_S):
        if wait_s <= 0:
            raise ValueError("a pull lingers for a positive number of seconds")
        self.wait_s = wait_s
        self.stopped = False
        self._waiting: set[asyncio.Task] = set()
        self._interrupted: set[asyncio.Task] = set()

    async def next(self, psub) -> Msg | None:
        """The next message of ``psub``'s consumer (a pull subscription) as soon as one exists; None
        when the pull expired or was ended (stopping, a reconnect: the caller checks whether it is
        to stop, else pulls again). Errors other than a timeout are the caller's (a consumer that
        vanished, a connection that is down)."""
        msgs = await self._fetch(psub, 1)
        return msgs[0] if msgs else None

    async def take(self, psub, up_to: int) -> list[Msg]:
        """As :meth:`next`, but every message there is when the first exists, at most ``up_to`` (one
        pull instead of one a message, for a consumer that works through a backlog alone); an empty
        list when the pull expired or was ended. Not for a consumer that also uses :meth:`next`."""
        if up_to < 1:
            raise ValueError("take at least one message")
        return await self._fetch(psub, up_to)

    async def _fetch(self, psub, n: int) -> list[Msg]:
        if self.stopped:
            return []
        me = asyncio.current_task()
        assert me is not None
        self._waiting.add(me)
        try:
            return await psub.fetch(n, timeout=self.wait_s)
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            return []
        except asyncio.CancelledError:
            if me not in self._interrupted:   # cancelled by someone else: theirs to handle
                raise
            return []
        finally:
            self._waiting.discard(me)
            if me in self._interrupted:   # also when nats-py turned the cancel into another error
                self._interrupted.discard(me)
                me.uncancel()

    async def failed(self, exc: Exception, consumer: str, remake: Callable[[], Awaitable[Any]]) -> None:
        """After a pull that raised ``exc``: pause, then make the consumer again with ``remake`` if it
        vanished (deleted, its stream recreated). Any other failure is a connection that is down or
        reconnecting, which nats-py mends on its own. ``remake`` is the consumer's idempotent create,
        so it is harmless when JetStream was only unavailable; if it fails too, the next failed pull
        tries again. A batch pull waiting when its consumer is deleted ends only when it expires
        (nats-py 2.16 passes over the server's 409): the consumer is back within a pull's length."""
        await asyncio.sleep(PAUSE_S)
        if self.stopped:
            return
        if not isinstance(exc, GONE):
            log.debug("a pull of %s failed: %s", consumer, exc)
            return
        try:
            await remake()
        except Exception as again:  # noqa: BLE001 - JetStream unavailable: the next pull fails and comes back here
            log.debug("consumer %s not made again yet: %s", consumer, again)
        else:
            log.info("consumer %s made again (or found there) after a pull failed: %s", consumer,
                     exc.__class__.__name__)

    def _interrupt(self) -> None:
        for task in list(self._waiting):
            if task not in self._interrupted:
                self._interrupted.add(task)
                task.cancel()

    def stop(self) -> None:
        """End every waiting pull; later pulls return at once, with nothing."""
        self.stopped = True
        self._interrupt()

    async def reconnected(self) -> None:
        """Make every waiting pull again (for ``Bus(on_reconnected=)``)."""
        if not self.stopped:
            self._interrupt()


class AckFloors:
    """Where a consumer made again after it vanished starts: just after the ack floor it had when last
    asked, in the same stream.

    Every message up to a consumer's ack floor was acked (by this process or another sharing the
    consumer), so starting after it skips nothing; what was acked since it was asked comes again, at
    most ``every_s`` of messages, which idempotent handlers absorb. A stream made again (another
    creation time) starts a new sequence: its consumers start as they would at their first making.
    Floors are kept in memory: a process that starts and finds its consumer gone makes it as new."""

    def __init__(self, every_s: float = FLOOR_EVERY_S):
        self.every_s = every_s
        self._floors: dict[tuple[str, str], int] = {}
        self._asked: dict[tuple[str, str], float] = {}
        self._moved: set[tuple[str, str]] = set()   # messages came since the floor was asked
        self._created: dict[str, datetime | None] = {}

    async def note(self, psub, stream: str, consumer: str, *, got: bool) -> None:
        """After each pull of ``psub`` (``got``: it brought a message): ask the consumer its ack floor
        when messages came since it was last asked and that was ``every_s`` ago or more. The acks of
        the messages just handled may not have reached the server yet, so a consumer that goes idle is
        asked once more after its last messages (at its next empty pull), then not again: its floor
        does not move. A failure is left to the next pull to find."""
        key = (stream, consumer)
        if got:
            self._moved.add(key)
        if key not in self._moved or time.monotonic() - self._asked.get(key, float("-inf")) < self.every_s:
            return
        if not got:
            self._moved.discard(key)
        self._asked[key] = time.monotonic()
        try:
            info = await psub.consumer_info()
        except Exception:  # noqa: BLE001 - the next pull says what is wrong
            return
        if info.ack_floor is not None and info.ack_floor.stream_seq:
            self._floors[key] = max(self._floors.get(key, 0), info.ack_floor.stream_seq)

    def floor(self, stream: str, consumer: str) -> int:
        """The highest ack floor ``consumer`` was seen with (0: none yet)."""
        return self._floors.get((stream, consumer), 0)

    async def know(self, js, stream: str):
        """Ask ``stream``'s info (returned) and note which stream its floors are of (its creation
        time): a stream made again starts a new sequence, and the floors of the old one are dropped.
        Call it once before a set of consumers is first made, so that each need not ask."""
        info = await js.stream_info(stream)
        if self._created.get(stream, info.created) != info.created:
            self._floors = {k: v for k, v in self._floors.items() if k[0] != stream}
        self._created[stream] = info.created
        return info

    async def start(self, js, stream: str, consumer: str) -> dict[str, Any]:
        """The ``ConsumerConfig`` fields that make ``consumer`` start just after its floor
        (``deliver_policy``, ``opt_start_seq``); none when no floor is known, as at its first making.
        The stream is asked (:meth:`know`) only when there is a floor to check against it, or when it
        is not known yet."""
        from nats.js import api as js_api

        if stream in self._created and not self._floors.get((stream, consumer)):
            return {}
        info = await self.know(js, stream)
        floor = self._floors.get((stream, consumer))
        if not floor or floor > info.state.last_seq:   # a floor past the stream's end is another stream's
            return {}
        return {"deliver_policy": js_api.DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": floor + 1}
