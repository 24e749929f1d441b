"""Key encoding: no input can leave its table or share a key with another input."""

import re

import pytest
from hypothesis import given, settings, strategies as st

from lscloud.store import keys
from lscloud.store.errors import InvalidKey

ENCODED = re.compile(r"(?:[A-Za-z0-9_]|~[0-9A-F]{2})+")
# any character except lone surrogates, which are not valid Unicode (tested separately)
chars = st.characters(blacklist_categories=("Cs",))


@settings(max_examples=400)
@given(st.text(chars, min_size=1, max_size=40))  # 40 x 4-byte chars = 480, the encoded cap
def test_encode_never_yields_separators_and_round_trips(value):
    encoded = keys.encode_part(value)
    assert "/" not in encoded and "." not in encoded and encoded not in ("", ".", "..")
    assert ENCODED.fullmatch(encoded)
    assert keys.decode_part(encoded) == value


@settings(max_examples=400)
@given(st.text(chars, min_size=1, max_size=30), st.text(chars, min_size=1, max_size=30))
def test_different_inputs_never_share_a_key(a, b):
    if a != b:
        assert keys.encode_part(a) != keys.encode_part(b)
        assert keys.object_key("t", a) != keys.object_key("t", b)
        assert keys.object_key("t", "h", a) != keys.object_key("t", "h", b)


@settings(max_examples=200)
@given(st.text(chars, min_size=1, max_size=30), st.text(chars, min_size=1, max_size=30))
def test_object_key_stays_inside_its_table_and_hash(h, r):
    key = keys.object_key("units", h, r)
    table, enc_hash, tail = key.split("/")
    assert table == "units" and keys.decode_part(enc_hash) == h
    assert tail.endswith(".json") and keys.decode_part(tail[: -len(".json")]) == r


@settings(max_examples=200)
@given(st.text(chars, min_size=1, max_size=20), st.text(chars, min_size=1, max_size=20))
def test_encoded_prefix_matches_raw_prefix(p, rest):
    # range_prefix queries list by the encoded prefix: that must select exactly the raw prefix
    assert keys.encode_part(p + rest).startswith(keys.encode_part(p))
    other = rest + p
    if not other.startswith(p):
        assert not keys.encode_part(other).startswith(keys.encode_part(p))


@pytest.mark.parametrize("walk", ["..", ".", "../x", "a/b", "/", "x/../../etc", "a\\b", "%2F", "a\x00b", "..%2f"])
def test_key_walking_inputs_are_encoded_flat(walk):
    encoded = keys.encode_part(walk)
    assert "/" not in encoded and "." not in encoded and "\\" not in encoded
    key = keys.object_key("units", walk, walk)
    assert key.count("/") == 2 and key.startswith("units/") and ".." not in key
    assert keys.decode_part(encoded) == walk


def test_examples():
    assert keys.encode_part("LS_001") == "LS_001"
    assert keys.encode_part("LS-001") == "LS~2D001"
    assert keys.encode_part("a b~") == "a~20b~7E"
    assert keys.encode_part("..") == "~2E~2E"
    assert keys.encode_part("Lạng Sơn") == "L~E1~BA~A1ng~20S~C6~A1n"
    assert keys.object_key("units", "20", None) == "units/20/_.json"
    assert keys.object_key("units", "20", "2025-01") == "units/20/2025~2D01.json"


@pytest.mark.parametrize("bad", ["", "x" * (keys.MAX_PART_CHARS + 1), "\ud800", None, 5, b"x"])
def test_invalid_parts_refused(bad):
    with pytest.raises(InvalidKey) as err:
        keys.encode_part(bad)
    assert err.value.cause == "invalid_key"


def test_encoded_length_capped():
    keys.encode_part("x" * keys.MAX_PART_CHARS)
    with pytest.raises(InvalidKey):
        keys.encode_part("ạ" * keys.MAX_PART_CHARS)  # 3 UTF-8 bytes -> 9 characters each


@pytest.mark.parametrize("bad", ["", "a/b", "%41", "a-b", "~2e", "~41", "~zz", "~E1", "a~2", ".", "~7e"])
def test_decode_refuses_non_canonical(bad):
    with pytest.raises(InvalidKey):
        keys.decode_part(bad)


@pytest.mark.parametrize("bad", ["", "Units", "-a", "a-", "a_b", "a/b", "a" * 41, None])
def test_table_names(bad):
    with pytest.raises(InvalidKey):
        keys.validate_table(bad)
    assert keys.validate_table("border-declarations") == "border-declarations"


def test_page_token_round_trip_and_tampering():
    key_re = keys.item_key_re("units", with_range=True)
    prefix = keys.hash_prefix("units", "h")
    key = keys.object_key("units", "h", "r 1")
    token = keys.encode_token(key)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert keys.decode_token(token, prefix, key_re) == key
    outside = [keys.object_key("units", "other", "r"), keys.object_key("secrets", "h", "r"),
               "units/h/../../secrets/x.json", "units/h/r.json/extra", "units/h/~41.json", "units/h/%41.json"]
    for forged in outside:
        with pytest.raises(InvalidKey) as err:
            keys.decode_token(keys.encode_token(forged), prefix, key_re)
        assert err.value.cause == "invalid_page_token"
    for garbage in ["", "!!!", token + "=", "a", token[:-1] + "*", "x" * 3000]:
        with pytest.raises(InvalidKey):
            keys.decode_token(garbage, prefix, key_re)


def test_object_key_order_is_encoded_part_order():
    # every encoded character sorts after ".", so listing order (by whole key) is encoded-part order,
    # and a value sorts before its extensions
    values = ["2025", "2025-01", "2025-01-15", "2025-02", "2025 x", "20250", "a", "a-b", "ab", "b"]
    by_key = sorted(values, key=lambda r: keys.object_key("t", "h", r))
    assert by_key == sorted(values, key=keys.encode_part)
    assert by_key.index("2025") < by_key.index("2025-01") < by_key.index("2025-01-15") < by_key.index("2025-02")


@settings(max_examples=300)
@given(st.text(chars, min_size=1, max_size=20), st.text(chars, min_size=1, max_size=20))
def test_key_order_matches_encoded_order(a, b):
    ka, kb = keys.object_key("t", "h", a), keys.object_key("t", "h", b)
    ea, eb = keys.encode_part(a), keys.encode_part(b)
    assert (ka < kb) == (ea < eb)
    if b.startswith(a) and a != b:
        assert ka < kb  # prefix first
