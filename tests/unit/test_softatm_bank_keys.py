"""A bank's HMAC secrets are decrypted once per ciphertext, not at every signed request or webhook
(a Fernet decryption was a tenth of the soft ATM's CPU per withdrawal), and a secret under another
KEK is unusable, never a crash."""

from __future__ import annotations

from cryptography.fernet import Fernet

from functions.softatm.function import banks


class CountingFernet(Fernet):
    def __init__(self, key: bytes):
        super().__init__(key)
        self.decryptions = 0

    def decrypt(self, token, ttl=None):
        self.decryptions += 1
        return super().decrypt(token, ttl)


def test_a_secret_is_decrypted_once_and_a_foreign_one_is_empty():
    f, other = CountingFernet(Fernet.generate_key()), CountingFernet(Fernet.generate_key())
    token = f.encrypt(b"s" * 40).decode()
    assert [banks._decrypted(f, token) for _ in range(5)] == ["s" * 40] * 5
    assert f.decryptions == 1
    # the same ciphertext under another KEK: its own entry, unusable
    assert banks._decrypted(other, token) == "" and banks._decrypted(other, token) == ""
    assert other.decryptions == 1
    rotated = f.encrypt(b"t" * 40).decode()
    assert banks._decrypted(f, rotated) == "t" * 40 and f.decryptions == 2
