"""What the runtime keeps per Flask app: its name, settings, schemas and partner key resolver.

Kept apart from :mod:`lscloud.web` (which builds apps) so that :mod:`lscloud.auth` and the request
hooks can read the current app's settings without importing the app factory.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from flask import Flask, current_app

__all__ = ["AppState", "app_state"]


class AppState:
    """Per-app runtime state, kept in ``app.extensions["lscloud"]``.

    ``schema_loader`` builds the app's schema set on first use (the factory passes one bound to
    its ``schemas_dir``); ``partner_keys`` resolves a partner's signing keys (None: settings).
    """

    def __init__(self, name: str, settings, schemas_dir: Path | None, openapi: dict | None,
                 partner_keys: Callable[[str], Any] | None = None,
                 schema_loader: Callable[[Path], Any] | None = None):
        self.name = name
        #: ``fn(partner) -> key slots | None`` for signed partner requests (None: settings.partner_keys)
        self.partner_keys = partner_keys
        self.settings = settings
        self.schemas_dir = Path(schemas_dir) if schemas_dir else None
        self.openapi_info = dict(openapi or {})
        self._schema_loader = schema_loader
        self._lock = threading.Lock()
        self._schemas = None
        self.access_checked = False

    @property
    def schemas(self):
        """The app's :class:`lscloud.web.bodies.SchemaSet` (loaded once, on first use)."""
        if self._schemas is None:
            with self._lock:
                if self._schemas is None:
                    if self.schemas_dir is None or self._schema_loader is None:
                        raise RuntimeError(f"app {self.name!r} validates bodies but has no schemas_dir")
                    self._schemas = self._schema_loader(self.schemas_dir)
        return self._schemas


def app_state(app: Flask | None = None) -> AppState:
    """The runtime state of ``app`` (default: the app serving the current request)."""
    return (app or current_app).extensions["lscloud"]
