"""nats-py, imported without the aiohttp it loads for a transport the platform never uses.

nats-py's ``nats.aio.transport`` imports aiohttp at its top, for its WebSocket transport only
(``ws://``, ``wss://`` servers); the platform's NATS URLs are ``nats://`` or ``tls://``
(:mod:`lscloud.config` refuses any other). aiohttp is most of what importing nats-py costs: in a
function process (the runtime imported), ``import lscloud.bus`` took 149 ms with it and 33 ms without
(median of nine, the 2-core box). A function imports nats-py at its first publish
(:attr:`lscloud.runtime.Runtime.bus`), inside the first request after a scale from zero that writes
an event, or before it is ready (environment's devices: its cold start 442–481 ms → 317–359 ms).

Every lscloud module that imports nats-py imports this module first (``tests/unit/test_lean_imports.py``
holds them to it): nats-py's transport is then imported with aiohttp refused to that one import
(:func:`lscloud.lean_imports.import_without`), which nats-py takes as "no WebSocket support"; the
gateway and the event dispatcher, which import aiohttp for themselves, get the real package.
"""

from __future__ import annotations

from .lean_imports import import_without

import_without("nats.aio.transport", "aiohttp")
