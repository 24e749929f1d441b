"""The local cloud's pseudonym key: created once per state dir, like the dev signing keys.

`lscloud up` gives it to every function (``LSCLOUD_PSEUDONYM_KEY``); the CLI's commands that reach
a running cloud read the same file. It lives beside the data it keys: a new state dir gets a new
key, and a state dir keeps its key across restarts.

A key set in the environment must be the state dir's: the data is keyed under that one, and a
cloud started with another re-keyed everything to it and left it unfindable once the variable was
gone. So a different one is refused, with what to run to keep the data's key or to re-key the data
under the new one (:func:`for_cloud`); a state dir without a key yet takes the environment's.
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
    return _create(key_file(state_dir), secrets.token_urlsafe(32))


def _create(path: Path, key: str) -> str:
    """The key in ``path``, written as ``key`` (0600) if there is none yet; the first writer wins."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        tmp = path.with_name(f".pseudonym.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won: everyone uses its key
        finally:
            tmp.unlink()
    return path.read_text().strip()


def for_cloud(state_dir: str | os.PathLike, settings: config.Settings) -> str:
    """The key a local cloud uses: the state dir's own. ``settings`` naming another
    (``LSCLOUD_PSEUDONYM_KEY``, unless that is only the public default) is the state dir's key
    when it has none yet; when it has a different one, :class:`config.ConfigError` says what to run."""
    wanted = settings.pseudonym_key
    if wanted == config.LOCAL_PSEUDONYM_KEY:
        return ensure(state_dir)
    path = key_file(state_dir)
    own = _create(path, wanted)
    if own == wanted:
        return own
    from .. import pseudonyms

    mine, theirs = pseudonyms.key_id_of(own), pseudonyms.key_id_of(wanted)
    # the ids only, never a key: the message goes to a terminal, a CI log, a bug report
    raise config.ConfigError(
        f"LSCLOUD_PSEUDONYM_KEY (key id {theirs}) is not the pseudonym key of state dir {state_dir} (key id "
        f"{mine}, {path}), which its data is keyed under; a cloud started with it would re-key every "
        "index to it. Nothing was changed.\n"
        f"  to keep the data's key:   unset LSCLOUD_PSEUDONYM_KEY, then run `lscloud --state-dir {state_dir} up` again\n"
        f"  to re-key the data under the new key (the old key is kept in {path.name}.{mine}):\n"
        f"    mv {path} {path}.{mine} && (umask 077; printf %s \"$LSCLOUD_PSEUDONYM_KEY\" > {path}) "
        f"&& lscloud --state-dir {state_dir} up\n"
        f"LSCLOUD_PSEUDONYM_KEY (mã khoá {theirs}) không phải khoá bí danh của thư mục trạng thái {state_dir} "
        f"(mã khoá {mine}) mà dữ liệu đang dùng: bỏ biến này (unset), hoặc làm theo lệnh trên để khoá lại dữ liệu.")
