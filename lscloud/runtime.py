"""The clients one function process holds: settings, object store, bus.

Knative's ``start(cfg)`` builds one :class:`Runtime` and installs it with :func:`install`;
handlers reach it with :func:`current`. Clients are created lazily and only once, so a
process that never publishes never connects to NATS. Tests install their own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from . import config, pseudonyms
from .store.objects import ObjectStore

if TYPE_CHECKING:  # pragma: no cover
    from .bus import SyncBus


class Runtime:
    """Lazily created, process-wide clients for one function."""

    def __init__(self, settings: config.Settings, *, bus: "SyncBus | None" = None):
        """``bus``: the bus to use instead of one made from ``settings`` on first use (a test's, with
        its own timeouts)."""
        self.settings = settings
        self._lock = threading.Lock()
        self._objects: ObjectStore | None = None
        self._bus = bus

    @property
    def objects(self) -> ObjectStore:
        if self._objects is None:
            with self._lock:
                if self._objects is None:
                    self._objects = ObjectStore.from_settings(self.settings)
        return self._objects

    @property
    def bus(self) -> "SyncBus":
        if self._bus is None:
            with self._lock:
                if self._bus is None:
                    from .bus import SyncBus

                    self._bus = SyncBus(self.settings)
                    self._bus.start()
        return self._bus

    def close(self) -> None:
        """Close what was opened (the bus drains its pending publishes)."""
        with self._lock:
            if self._bus is not None:
                self._bus.close()
                self._bus = None


_current: Runtime | None = None
_current_lock = threading.Lock()


def install(runtime: Runtime) -> Runtime:
    """Make ``runtime`` the process's runtime (the store's default connection, the pseudonym key)."""
    global _current
    with _current_lock:
        _current = runtime
    pseudonyms.configure(runtime.settings.pseudonym_key)
    from . import store

    store.configure(runtime.objects, runtime.settings.bucket)
    return runtime


def current() -> Runtime:
    """The installed runtime; installs one from the environment on first use."""
    if _current is None:
        install(Runtime(config.load()))
    return _current  # type: ignore[return-value]


def installed() -> Runtime | None:
    """The installed runtime, or None (does not install one)."""
    return _current


def uninstall() -> None:
    """Close and forget the installed runtime (tests, shutdown)."""
    global _current
    with _current_lock:
        if _current is not None:
            _current.close()
        _current = None
    from . import store

    store.configure(None)
