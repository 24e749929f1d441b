"""Partner banks: registered by operators, with two HMAC key slots and limits; their name, webhook
address and limits changed by operators (:func:`change`), their keys only by rotation (:func:`rotate`)
and retirement (:func:`remove_key`).

Secrets never leave this module in clear except to sign or verify: they are stored encrypted
(Fernet: AES-128-CBC + HMAC-SHA256) under a key-encryption key from ``SOFTATM_KEK`` (a Fernet key;
a cluster secret), locally a key created once under ``<state dir>/keys/softatm-kek`` (0600).
Answers, logs and spans carry only the key ids and a fingerprint (the first 12 hex digits of
sha256 of the secret) so an operator can tell which key a bank uses.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from lscloud import errors, freshness, http_client
from lscloud.lru import LRU
from lscloud.resends import IdReused, changed_fields
from lscloud.store import ConditionalCheckFailed, DoesNotExist, InvalidKey

from .models import Bank
from .refusals import KeySlotEmpty, KeySlotInUse, UnknownBank
from .settings import Settings

log = logging.getLogger("softatm.banks")

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}$")
DEFAULT_LIMITS = {"per_transaction_vnd": 20_000_000, "per_customer_day_vnd": 50_000_000}
CODES_FRESH_S = 5.0
"""How long a listing of the registered banks' codes answers "no such bank" from memory."""


_kek_lock = threading.Lock()
_fernet: dict[str, Fernet] = {}


def fernet(settings) -> Fernet:
    raw = Settings.of(settings).kek.strip()
    cache_key = raw or settings.state_dir
    f = _fernet.get(cache_key)
    if f is not None:
        return f
    with _kek_lock:
        if not raw:
            if settings.env == "cluster":
                raise RuntimeError("SOFTATM_KEK is required in the cluster (a Fernet key from a secret)")
            path = Path(settings.state_dir) / "keys" / "softatm-kek"
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                tmp = path.with_name(f".softatm-kek.{os.getpid()}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(Fernet.generate_key())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass
                finally:
                    tmp.unlink()
            raw = path.read_text().strip()
        f = _fernet[cache_key] = Fernet(raw.encode())
        return f


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def _check_secret(secret, field: str) -> str:
    if not isinstance(secret, str) or len(secret) < 32 or len(secret) > 256:
        raise errors.Invalid.at(field, "an HMAC key is 32-256 characters", "Khóa HMAC phải dài từ 32 đến 256 ký tự.")
    return secret


def check_webhook_url(settings, url: str) -> str:
    """A webhook address every webhook can be sent to (:func:`lscloud.http_client.parse_url`): one
    that cannot is refused when it is given, not retried at every transfer. In the cluster only
    ``https``: a webhook carries the customer's account and ID numbers to their bank, outside the
    cluster (the local cloud's bank simulator answers on loopback)."""
    try:
        where = http_client.parse_url(url)
    except http_client.BadUrl as exc:
        raise errors.Invalid.at("/webhook_url", exc.message, exc.message_vi) from None
    if settings.env == "cluster" and where.scheme != "https":
        raise errors.Invalid.at("/webhook_url", "a bank's webhook address is https: webhooks carry customers' "
                                "account and ID numbers", "địa chỉ webhook của ngân hàng phải là https: webhook "
                                "mang số tài khoản và số định danh của khách hàng")
    return url


def public(data: dict) -> dict:
    """The bank as answers show it: key ids and fingerprints, never the secrets."""
    keys = [{"key_id": k["key_id"], "fingerprint": k["fingerprint"], "added_at": k["added_at"]}
            for k in data["keys"] if k.get("secret")]
    out = {"code": data["code"], "name": data["name"], "webhook_url": data["webhook_url"], "limits": data["limits"],
           "keys": keys, "signing_key_id": data["signing_key_id"], "registered_at": data["registered_at"]}
    if data.get("changed_at"):
        out.update(changed_at=data["changed_at"], changed_by=data["changed_by"])
    return out


def register(settings, body: dict, at: str) -> tuple[dict, bool]:
    """Register bank ``body`` (create-only under its code); returns the bank as answers show it, and
    whether it was registered already (a resend: the same name, webhook address, limits and keys).
    A code registered with other details is :class:`~lscloud.resends.IdReused` naming the fields
    that differ (``/keys/<i>`` for a key: by fingerprint, never shown)."""
    code = body["code"]
    if not CODE_RE.match(code):
        raise errors.Invalid.at("/code", "a bank code is 2-31 lowercase letters, digits or '-'",
                                "Mã ngân hàng gồm 2 đến 31 ký tự: chữ thường không dấu, chữ số hoặc dấu '-'.")
    f = fernet(settings)
    keys = []
    for i, secret in enumerate(body["keys"]):
        secret = _check_secret(secret, f"/keys/{i}")
        keys.append({"key_id": str(i + 1), "secret": f.encrypt(secret.encode()).decode(),
                     "fingerprint": fingerprint(secret), "added_at": at})
    if len(keys) == 1:
        keys.append({"key_id": "2", "secret": None, "fingerprint": None, "added_at": None})
    limits = {**DEFAULT_LIMITS, **(body.get("limits") or {})}
    data = {"code": code, "name": body["name"], "webhook_url": check_webhook_url(settings, body["webhook_url"]),
            "limits": limits, "keys": keys,
            "signing_key_id": "1", "signing_since": at, "registered_at": at}
    try:
        Bank(code, data=data).save()
    except ConditionalCheckFailed:
        existing = read(code)[0]
        diff = changed_fields(_as_registered(existing), _as_registered(data))
        if diff:
            raise IdReused(diff, key=code, message="differs from the bank registered under this code",
                           message_vi="khác với ngân hàng đã đăng ký dưới mã này",
                           detail=f"bank {code!r} is already registered with other details: {len(diff)} field(s) "
                                  "differ; send the same registration to get it again, or change the bank "
                                  "(PATCH with If-Match, or a key rotation)") from None
        return public(existing), True
    _forget()
    return public(data), False


def _as_registered(data: dict) -> dict:
    """What a registration says, as its body's pointers name it (a key by its fingerprint; a slot left
    empty as null), to tell a resend from another registration under the same code."""
    return {"code": data["code"], "name": data["name"], "webhook_url": data["webhook_url"],
            "limits": data["limits"], "keys": [k["fingerprint"] for k in data["keys"]]}


def upsert(settings, body: dict, at: str) -> dict:
    """Register, or replace a registration outright (seeding a test peer; never for real banks)."""
    try:
        return register(settings, body, at)[0]
    except IdReused:
        pass
    item = Bank(body["code"])
    item.refresh()
    item.delete()
    _forget()
    return register(settings, body, at)[0]


CHANGEABLE = ("name", "webhook_url", "limits")
"""What :func:`change` changes; the keys change by rotation only (:func:`rotate`)."""


def change(settings, code: str, patch: dict, at: str, by: str, version: int | None = None) -> tuple[dict, int]:
    """Apply operator ``by``'s merge patch (RFC 7396) of ``name``, ``webhook_url`` and ``limits`` (a
    limit not named keeps its value); returns the bank as answers show it, and its version. The
    bank records who changed it last and when (``changed_by``, ``changed_at``): where its webhooks
    go decides who receives its customers' account and ID numbers.

    ``version`` (the caller's ``If-Match``, which the API requires): change only that version, else
    412. None (in-process callers only) applies the patch to the bank as stored. A patch that changes
    nothing writes nothing."""
    if "webhook_url" in patch:
        check_webhook_url(settings, patch["webhook_url"])

    def patched(data: dict) -> dict:
        return {**data, **{k: patch[k] for k in ("name", "webhook_url") if k in patch},
                "limits": {**data["limits"], **(patch.get("limits") or {})}}

    def apply(item: Bank) -> None:
        if version is not None and item.version != version:
            raise _Stale()
        new = patched(item.data)
        if all(new[k] == item.data[k] for k in CHANGEABLE):
            raise _Unchanged(item)
        item.data = {**new, "changed_at": at, "changed_by": by}

    try:
        bank = Bank.update(code, None, apply, retries=0 if version is not None else None)
    except (DoesNotExist, InvalidKey):
        raise _unknown(code) from None
    except _Unchanged as same:
        return public(same.item.data), same.item.version
    except ConditionalCheckFailed:
        if version is None:
            raise   # changed again and again meanwhile: the runtime's 409
        raise errors.changed_since() from None
    except _Stale:
        raise errors.changed_since() from None
    log.info("bank %s: %s changed by %s", code, ", ".join(k for k in CHANGEABLE if k in patch), by)
    return public(bank.data), bank.version


class _Stale(Exception):
    """The stored bank is not the version the caller changed."""


class _Unchanged(Exception):
    def __init__(self, item: Bank):
        super().__init__()
        self.item = item


def _slot(data: dict, key_id: str) -> dict:
    return next(k for k in data["keys"] if k["key_id"] == key_id)


def rotate(settings, code: str, key_id: str, secret: str | None, at: str, sign_with_it: bool = False) -> dict:
    """Put a new secret into slot ``key_id`` (the old secret in that slot stops working at once) and,
    with ``sign_with_it``, sign our webhooks with that slot from now on; without a secret, only
    switch our webhooks to the slot (its key as it is).

    Our webhooks keep their key unless the operator says so (the bank confirmed it verifies the
    new one): a bank answers a webhook signed with a key it does not hold 401. So the slot that
    signs them takes a new secret only with ``sign_with_it`` (409 otherwise: put it in the other
    slot), and switching to an empty slot is a 409."""
    if secret is not None:
        secret = _check_secret(secret, "/secret")
    f = fernet(settings)

    def change(item: Bank):
        data = item.data
        slot = _slot(data, key_id)
        if secret is None and not slot.get("secret"):
            raise KeySlotEmpty(f"key slot {key_id} of bank {code!r} is empty: put a key in it to sign with it",
                               detail_vi=f"Khe khóa {key_id} của ngân hàng đang trống: hãy đặt khóa vào trước khi "
                                         "dùng nó để ký.", errors=[errors.field("/key_id", "an empty key slot")])
        if secret is not None and key_id == data["signing_key_id"] and not sign_with_it:
            raise KeySlotInUse(
                f"key slot {key_id} signs our webhooks to bank {code!r}: a new key there would sign them before "
                "the bank holds it. Put it in the other slot, or say sign_webhooks: true to replace it now",
                detail_vi=f"Khe khóa {key_id} đang ký webhook gửi ngân hàng: khóa mới ở đây sẽ ký webhook trước khi "
                          "ngân hàng có khóa. Hãy đặt vào khe còn lại, hoặc gửi sign_webhooks: true để thay ngay.",
                errors=[errors.field("/key_id", "the slot that signs our webhooks")])
        if secret is not None:
            slot.update(secret=f.encrypt(secret.encode()).decode(), fingerprint=fingerprint(secret), added_at=at)
        if sign_with_it and data["signing_key_id"] != key_id:
            data.update(signing_key_id=key_id, signing_since=at)

    try:
        bank = Bank.update(code, None, change)
    except (DoesNotExist, InvalidKey):
        raise _unknown(code) from None
    log.info("bank %s: key slot %s %s%s", code, key_id, "set" if secret is not None else "kept",
             ", signs our webhooks" if bank.data["signing_key_id"] == key_id else "")
    return public(bank.data)


def remove_key(settings, code: str, key_id: str, at: str, by: str) -> dict:
    """Empty slot ``key_id``: its key stops verifying at once here, within ``LSCLOUD_PEER_FRESH_S``
    at the other replicas (as a rotation). Not the slot that signs our webhooks, nor the bank's only
    key (409 saying which); an empty slot stays empty (a resend)."""

    def change(item: Bank):
        data = item.data
        slot = _slot(data, key_id)
        if not slot.get("secret"):
            raise _Unchanged(item)
        if key_id == data["signing_key_id"]:
            raise KeySlotInUse(
                f"key slot {key_id} signs our webhooks to bank {code!r}: switch them to the other slot first "
                "(POST /v1/banks/{code}/keys with its key_id and sign_webhooks: true), once the bank verifies it",
                detail_vi=f"Khe khóa {key_id} đang ký webhook gửi ngân hàng: hãy chuyển sang khe còn lại trước "
                          "(POST /v1/banks/{code}/keys với key_id của khe đó và sign_webhooks: true), khi ngân hàng "
                          "đã kiểm được chữ ký bằng khóa đó.",
                errors=[errors.field("key_id", "the slot that signs our webhooks")])
        if not any(k.get("secret") for k in data["keys"] if k["key_id"] != key_id):
            raise KeySlotInUse(
                f"key slot {key_id} holds bank {code!r}'s only key: the bank could sign nothing",
                detail_vi=f"Khe khóa {key_id} giữ khóa duy nhất của ngân hàng: ngân hàng sẽ không ký được gì.",
                errors=[errors.field("key_id", "the bank's only key")])
        slot.update(secret=None, fingerprint=None, added_at=None, removed_at=at, removed_by=by)

    try:
        bank = Bank.update(code, None, change)
    except (DoesNotExist, InvalidKey):
        raise _unknown(code) from None
    except _Unchanged as same:
        return public(same.item.data)
    log.info("bank %s: key slot %s emptied by %s", code, key_id, by)
    return public(bank.data)


def get(code: str) -> dict:
    """The bank as stored, read through the store's reference cache (``Bank.Meta.reference``): what
    every transfer, webhook and signed request reads. A change made here is read at once, another
    replica's within ``LSCLOUD_PEER_FRESH_S`` (the bound the banks' keys have)."""
    try:
        return Bank.get(code).data
    except (DoesNotExist, ValueError):
        raise _unknown(code) from None


def read(code: str) -> tuple[dict, int]:
    """The bank as the store holds it now, and its version (what ``If-Match`` names to
    :func:`change` it): an operator's answer, not the cached copy."""
    item = Bank(code)
    try:
        item.refresh()
    except (DoesNotExist, ValueError):
        raise _unknown(code) from None
    return item.data, item.version


def _unknown(code: str) -> UnknownBank:
    return UnknownBank(f"no bank {code!r} is registered", detail_vi="Ngân hàng này chưa được đăng ký.")


def list_all() -> list[dict]:
    return [public(b.data) for b in Bank.scan()]


# The registered banks' codes, listed when a name nobody registered came: the key slots are looked
# up by the partner header of a request whose signature is not checked yet, and a caller making
# names up must cost neither a store read per name nor this replica's memory (a missing bank is not
# held by the reference cache). A registration here drops the listing; one overtaken by it is not kept.
_codes = freshness.Revalidating(1)


def _forget() -> None:
    """A bank registered or removed here: the next unknown name lists the codes again."""
    _codes.drop("codes")


def _registered_codes() -> frozenset:
    return _codes.get("codes", lambda _etag: ("listed", frozenset(b.code for b in Bank.scan()), CODES_FRESH_S))


def key_slots(settings, code: str) -> tuple[str, ...] | None:
    """The decrypted secrets in slot order ("" for an empty slot): the runtime's partner-key resolver."""
    if "codes" in _codes and code not in _registered_codes():
        return None
    try:
        data = Bank.get(code).data
    except (DoesNotExist, ValueError):
        _registered_codes()
        return None
    f = fernet(settings)
    return tuple(_decrypted(f, k["secret"]) if k.get("secret") else ""
                 for k in sorted(data["keys"], key=lambda k: k["key_id"]))


PLAIN_ITEMS = 1024
"""Decrypted secrets held, by their ciphertext: every signed request and webhook needs its bank's keys,
and a Fernet decryption (an HMAC check and AES) was a tenth of the soft ATM's CPU per withdrawal. A
rotated key is a new ciphertext; one no longer stored drops out, least recently used first."""
_plain: LRU = LRU(PLAIN_ITEMS)


def _decrypted(f: Fernet, token: str) -> str:
    hit = _plain.get((f, token))
    if hit is None:
        try:
            hit = f.decrypt(token.encode()).decode()
        except InvalidToken:
            hit = ""  # encrypted under another KEK: unusable, never a crash
        _plain.put((f, token), hit)
    return hit


def signing_key(settings, data: dict) -> tuple[str, str]:
    """(key id, secret) our webhooks to this bank are signed with."""
    slots = key_slots(settings, data["code"]) or ()
    kid = data["signing_key_id"]
    secret = slots[int(kid) - 1] if len(slots) >= int(kid) else ""
    if not secret:
        kid, secret = next(((str(i + 1), s) for i, s in enumerate(slots) if s), ("", ""))
    return kid, secret
