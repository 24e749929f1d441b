"""nats-py, imported without the aiohttp it loads for a transport the platform never uses.

nats-py's ``nats.aio.transport`` imports aiohttp at its top, for its WebSocket transport only
(``ws://``, ``wss://`` servers); the platform's NATS URLs are ``nats://`` or ``tls://``
(:mod:`lscloud.config` refuses any other). aiohttp is most of what importing nats-py costs: in a
function process (the runtime imported), ``import lscloud.bus`` took 149 ms with it and 33 ms without
(median of nine, the 2-core box). A function imports nats-py at its first publish
(:attr:`lscloud.runtime.Runtime.bus`), inside the first request after a scale from zero that writes
an event, or before it is ready (environment's devices: its cold start 442–481 ms → 317–359 ms).

Every lscloud module that imports nats-py imports this module first (``tests/unit/test_nats_import.py``
holds them to it). If nats-py's transport is not imported yet, it is imported here with ``import
aiohttp`` refused *in this thread, during this import only*: a finder at the head of
``sys.meta_path`` raises ModuleNotFoundError for ``aiohttp`` while a thread-local flag is up, which
nats-py takes as "no WebSocket support". Any other import of aiohttp — in another thread meanwhile,
or in this one afterwards — finds the real package; a process that imported aiohttp before (the
gateway, the event dispatcher, pyHanko's fetchers) hands it to nats-py as it always did.
"""

from __future__ import annotations

import sys
import threading

_importing = threading.local()


class _NoAiohttpForNats:
    """A meta path finder refusing ``aiohttp`` to the thread importing nats-py's transport in
    :func:`_import_transport`; it passes every other import on (None: the next finder's)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "aiohttp" and getattr(_importing, "nats", False):
            raise ModuleNotFoundError("aiohttp is not imported for nats-py (lscloud.nats_import)", name=name)
        return None


def _import_transport() -> None:
    if "nats.aio.transport" in sys.modules:
        return   # imported already, with or without aiohttp: nothing left to save
    # installed for good: taken out again, an import iterating sys.meta_path in another thread at
    # that moment could skip the finder after it
    sys.meta_path.insert(0, _NoAiohttpForNats)
    _importing.nats = True
    try:
        import nats.aio.transport  # noqa: F401
    finally:
        _importing.nats = False


_import_transport()
