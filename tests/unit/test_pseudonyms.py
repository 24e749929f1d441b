"""Pseudonyms: keyed hashes in place of personal identifiers, the key's settings, and pseudonymous
model keys (no identifier in any object key, no identifier in a model's repr)."""

from __future__ import annotations

import hashlib
import re

import pytest

from lscloud import config, pseudonyms
from lscloud.store import Model, attributes as A
from lscloud.store.model import _ModelMeta

CCCD = "020095001234"
KEY = "k" * 40


@pytest.fixture(autouse=True)
def _restore_key():
    yield
    pseudonyms.configure(config.LOCAL_PSEUDONYM_KEY)


class Owners(Model):
    class Meta:
        table = "test-owners"

    owner = A.PseudonymAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)


def test_a_pseudonym_is_short_url_safe_and_keyed():
    pseudonyms.configure(KEY)
    p = pseudonyms.pseudonym("border-owners", CCCD)
    assert re.fullmatch(r"[a-z2-7]{26}", p)
    assert pseudonyms.pseudonym("border-owners", CCCD) == p                    # findable again
    assert pseudonyms.pseudonym("dossiers-owners", CCCD) != p                  # unlinkable across indexes
    assert CCCD not in p and hashlib.sha256(CCCD.encode()).hexdigest()[:26] != p
    pseudonyms.configure("another-key-" + "x" * 30)
    assert pseudonyms.pseudonym("border-owners", CCCD) != p                    # no key, no pseudonym


def test_the_key_is_a_setting_required_in_the_cluster():
    cluster = {"LSCLOUD_ENV": "cluster", "LSCLOUD_JWT_JWKS_URL": "https://idp.example/jwks"}
    with pytest.raises(config.ConfigError, match="LSCLOUD_PSEUDONYM_KEY"):
        config.load(cluster)
    with pytest.raises(config.ConfigError, match="LSCLOUD_PSEUDONYM_KEY"):
        config.load({**cluster, "LSCLOUD_PSEUDONYM_KEY": config.LOCAL_PSEUDONYM_KEY})   # the public one
    with pytest.raises(config.ConfigError, match="at least 32"):
        config.load({"LSCLOUD_PSEUDONYM_KEY": "short"})
    assert config.load({**cluster, "LSCLOUD_PSEUDONYM_KEY": KEY}).pseudonym_key == KEY
    assert config.load({}).pseudonym_key == config.LOCAL_PSEUDONYM_KEY
    assert KEY not in repr(config.load({"LSCLOUD_PSEUDONYM_KEY": KEY}))
    assert config.load(config.load({"LSCLOUD_PSEUDONYM_KEY": KEY}).env_vars()).pseudonym_key == KEY


def test_a_pseudonymous_hash_key_keeps_the_identifier_out_of_the_object_key():
    pseudonyms.configure(KEY)
    key = Owners._key_for("drv:" + CCCD, "1796284154731999_e2e")
    assert CCCD not in key and "drv" not in key
    assert key == f"test-owners/{pseudonyms.pseudonym('test-owners', 'drv:' + CCCD)}/1796284154731999_e2e.json"
    item = Owners("drv:" + CCCD, "x")
    assert item.owner == "drv:" + CCCD               # the item keeps the value; only its key is a pseudonym
    assert CCCD not in repr(item)


def test_a_pseudonym_cannot_be_a_range_key():
    with pytest.raises(TypeError, match="hash key"):
        _ModelMeta("Bad", (Model,), {"Meta": type("Meta", (), {"table": "bad"}), "h": A.UnicodeAttribute(hash_key=True),
                                     "r": A.PseudonymAttribute(range_key=True)})


def test_the_local_cloud_keeps_one_key_per_state_dir(tmp_path):
    import os
    import stat

    from lscloud.local import pseudonym_key

    key = pseudonym_key.ensure(tmp_path)
    assert len(key) >= config.PSEUDONYM_KEY_MIN_CHARS and key != config.LOCAL_PSEUDONYM_KEY
    assert stat.S_IMODE(os.stat(pseudonym_key.key_file(tmp_path)).st_mode) == 0o600
    assert pseudonym_key.ensure(tmp_path) == key != pseudonym_key.ensure(tmp_path / "other")
    assert pseudonym_key.for_cloud(tmp_path, config.load({})) == key                  # the default: the dir's
    # a set one that is not the dir's is refused: the dir's data is keyed under the dir's key
    with pytest.raises(config.ConfigError):
        pseudonym_key.for_cloud(tmp_path, config.load({"LSCLOUD_PSEUDONYM_KEY": KEY}))
    assert pseudonym_key.for_cloud(tmp_path / "new", config.load({"LSCLOUD_PSEUDONYM_KEY": KEY})) == KEY   # a new dir adopts it
