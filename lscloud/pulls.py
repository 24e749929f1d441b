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
consumer again if it vanished.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg

log = logging.getLogger("lscloud.pulls")

WAIT_S = 30.0
"""How long a pull lingers; see the module's docstring."""

PAUSE_S = 0.5
"""How long a consumer waits after a failed pull before it pulls again (or makes its consumer again)."""

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
