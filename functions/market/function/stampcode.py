"""The traceability stamp's code: short, signed by the province, verifiable offline, unique.

A code is 75 bytes written in RFC 4648 base32 without padding: 120 characters ``A-Z2-7`` (case is
ignored when reading); with the scan URL in front, a QR code of version 9 (53 modules) at
error-correction level M holds it::

    byte 0        format (high nibble, 1) | key index (low nibble, 0-15): which published key signed it
    bytes 1-6     the batch id (48 random bits; the batch record is written create-only)
    bytes 7-10    the stamp's serial in its batch (big-endian, 0 … count-1)
    bytes 11-74   Ed25519 signature (RFC 8032) over bytes 0-10, under the key that byte 0 names

Why this cannot be forged or confused:

- *authentic*: only the holder of the province's private key can make a signature that the
  published public key accepts (Ed25519 is existentially unforgeable); changing any character of
  a code changes bytes 0-10 or the signature, so verification fails — an altered code is
  ``authentic: false``, offline (any phone with the public key) and online;
- *unique*: (batch, serial) is never signed twice for two stamps: a batch id is taken with a
  create-only write (a collision is a refused write, not two batches), and serials inside a batch
  are its numbering; Ed25519 is deterministic, so re-printing a batch gives the same codes;
- *issued*: a signature proves the province signed the bytes; the online scan also checks the
  batch record (the serial below the batch's count) — a signed code for a batch that was never
  recorded (it cannot exist unless the key leaked) is ``authentic: false``;
- *copied*: a signature cannot stop a photocopy of a genuine stamp; that is what the scan
  counters are for (:mod:`.scans`: too many scans, implausible places).

The format byte leaves room for a key rotation (a new key index) and for another format (a new high
nibble) without ambiguity. A rotated-out key keeps verifying the codes that name its index (its
public half stays published, *retired*: :mod:`.stampkeys`), so :func:`verify` takes every published
key, not only the one signing now. Plain Python over ``cryptography``'s Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = 1
BATCH_BYTES = 6
SERIAL_BYTES = 4
SIGNATURE_BYTES = 64
PAYLOAD_BYTES = 1 + BATCH_BYTES + SERIAL_BYTES
CODE_BYTES = PAYLOAD_BYTES + SIGNATURE_BYTES
CODE_CHARS = CODE_BYTES * 8 // 5          # 120: 600 bits, no padding
MAX_SERIAL = 2 ** (8 * SERIAL_BYTES) - 1
_CODE_RE = re.compile(rf"[A-Za-z2-7]{{{CODE_CHARS}}}")


class NotAStamp(ValueError):
    """The text is not a stamp code of this format; ``reason`` is a stable slug for the answer."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Stamp:
    """What a well-formed code says (not yet whether its signature holds)."""

    key_index: int
    batch: str          # the batch id as stored: base32, lower case, 10 characters
    serial: int
    payload: bytes
    signature: bytes


def batch_id(raw: bytes) -> str:
    """The stored spelling of a 6-byte batch id."""
    if len(raw) != BATCH_BYTES:
        raise ValueError(f"a batch id is {BATCH_BYTES} bytes")
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def batch_bytes(batch: str) -> bytes:
    padded = batch.upper() + "=" * (-len(batch) % 8)
    raw = base64.b32decode(padded)
    if len(raw) != BATCH_BYTES:
        raise ValueError("not a batch id")
    return raw


def payload(key_index: int, batch: str, serial: int) -> bytes:
    if not 0 <= key_index <= 15:
        raise ValueError("the key index is 0-15")
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError(f"the serial is 0-{MAX_SERIAL}")
    return bytes([(FORMAT << 4) | key_index]) + batch_bytes(batch) + serial.to_bytes(SERIAL_BYTES, "big")


def encode(key: Ed25519PrivateKey, key_index: int, batch: str, serial: int) -> str:
    """The code of stamp ``serial`` of ``batch``, signed with ``key`` (published as ``key_index``)."""
    body = payload(key_index, batch, serial)
    return base64.b32encode(body + key.sign(body)).decode("ascii")


def encode_range(key: Ed25519PrivateKey, key_index: int, batch: str, first: int, count: int) -> list[str]:
    """Codes ``first`` … ``first + count - 1`` of a batch (the hot loop of an issue: one signature each)."""
    head = bytes([(FORMAT << 4) | key_index]) + batch_bytes(batch)
    sign, b32 = key.sign, base64.b32encode
    out = []
    for serial in range(first, first + count):
        body = head + serial.to_bytes(SERIAL_BYTES, "big")
        out.append(b32(body + sign(body)).decode("ascii"))
    return out


def decode(code: str) -> Stamp:
    """Parse a code; :class:`NotAStamp` if it cannot be one (length, alphabet, format)."""
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        raise NotAStamp("malformed", f"a stamp code is {CODE_CHARS} characters A-Z and 2-7")
    try:
        raw = base64.b32decode(code.upper())
    except (binascii.Error, ValueError):
        raise NotAStamp("malformed", "the code is not base32") from None
    if raw[0] >> 4 != FORMAT:
        raise NotAStamp("unknown-format", f"format {raw[0] >> 4} is not one this service issues")
    return Stamp(raw[0] & 0x0F, batch_id(raw[1:1 + BATCH_BYTES]),
                 int.from_bytes(raw[1 + BATCH_BYTES:PAYLOAD_BYTES], "big"), raw[:PAYLOAD_BYTES], raw[PAYLOAD_BYTES:])


def verify(code: str, public_keys: dict[int, Ed25519PublicKey]) -> Stamp:
    """The stamp if its signature holds under the published key it names; else :class:`NotAStamp`.

    This is all an offline verifier does: no store, no network.
    """
    stamp = decode(code)
    key = public_keys.get(stamp.key_index)
    if key is None:
        raise NotAStamp("unknown-key", f"key {stamp.key_index} is not a published stamp key")
    try:
        key.verify(stamp.signature, stamp.payload)
    except InvalidSignature:
        raise NotAStamp("bad-signature", "the signature does not match: the code was altered or forged") from None
    return stamp
