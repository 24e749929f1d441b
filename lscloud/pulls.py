"""Lingering JetStream pulls that end early when asked: all at once when their consumers stop, and
made again when the connection comes back.

A lingering pull of one message returns the moment a message exists, so its length only sets how
often an idle consumer asks again: 30 s, the expiry nats.go's ``Consume`` uses by default (at 1 s,
the 47 subscriptions of `lscloud up` kept NATS busy with 47 pulls a second, idle). Two things must
then not wait for a pull to expire:

- **a reconnect**: a pull lives in the server that held the consumer when it was made; if that
  server restarted, the pull died with it. Give :meth:`Pulls.reconnected` to
  ``Bus(on_reconnected=)``: once nats-py has reconnected and resubscribed, every waiting pull is
  made again;
- **stopping**: :meth:`Pulls.stop` ends every waiting pull at once. A message that comes for an
  ended pull is never acked, so JetStream delivers it again after the consumer's ``ack_wait``.

An ended pull may still be open on a server that did not restart, and a message may come for it
later. A pull of one message takes that message as its own; a batch pull (nats-py 2.16) takes it,
then waits for its own pull to end, up to the full 30 s. Hence one message a pull.
"""

from __future__ import annotations

import asyncio

import nats.errors
from nats.aio.msg import Msg

WAIT_S = 30.0
"""How long a pull lingers; see the module's docstring."""


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
        if self.stopped:
            return None
        me = asyncio.current_task()
        assert me is not None
        self._waiting.add(me)
        try:
            (msg,) = await psub.fetch(1, timeout=self.wait_s)
            return msg
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            return None
        except asyncio.CancelledError:
            if me not in self._interrupted:   # cancelled by someone else: theirs to handle
                raise
            return None
        finally:
            self._waiting.discard(me)
            if me in self._interrupted:   # also when nats-py turned the cancel into another error
                self._interrupted.discard(me)
                me.uncancel()

    def _interrupt(self) -> None:
        for task in list(self._waiting):
            if task not in self._interrupted:
                self._interrupted.add(task)
                task.cancel()

    def stop(self) -> None:
        """End every waiting pull; later calls of :meth:`next` return None at once."""
        self.stopped = True
        self._interrupt()

    async def reconnected(self) -> None:
        """Make every waiting pull again (for ``Bus(on_reconnected=)``)."""
        if not self.stopped:
            self._interrupt()
