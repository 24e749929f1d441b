"""The local cloud's pseudonym key: created once per state dir, like the dev signing keys.

`lscloud up` gives it to every function (``LSCLOUD_PSEUDONYM_KEY``) unless the environment sets
one; the CLI's commands that reach a running cloud read the same file. It lives beside the data
it keys: a new state dir gets a new key, and a state dir keeps its key across restarts.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

from .. import config


def key_file(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / "keys" / "pseudonym.key"


def ensure(state_dir: str | os.PathLike) -> str:
    """The state dir's pseudonym key, created (0600) on first use; safe when several processes race."""
    path = key_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        tmp = path.with_name(f".pseudonym.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won: everyone uses its key
        finally:
            tmp.unlink()
    return path.read_text().strip()


def for_cloud(state_dir: str | os.PathLike, settings: config.Settings) -> str:
    """The key a local cloud uses: the one ``settings`` name (``LSCLOUD_PSEUDONYM_KEY``), unless
    that is only the public default; then the state dir's own."""
    if settings.pseudonym_key != config.LOCAL_PSEUDONYM_KEY:
        return settings.pseudonym_key
    return ensure(state_dir)
