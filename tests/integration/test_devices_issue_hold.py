"""``devices.issue(..., not_within_s=N)`` against a real weed mini: credentials issued less than N
seconds ago are not replaced (the password a first answer showed keeps working), and of two issues
at once the one whose conditional save loses reads again and is refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import bcrypt
import pytest

from lscloud import devices, store

pytestmark = pytest.mark.integration

DOMAIN = "environment"
TOPIC = "devices/environment/stations/lsn-h/observations"
HOLD_S = 300


@pytest.fixture
def issued(object_store, bucket):
    store.configure(object_store, bucket)
    yield bucket
    store.configure(None)


def _works(user: str, password: str) -> bool:
    item = devices.DeviceCredential.get(user)
    return bcrypt.checkpw(password.encode(), item.password_hash.encode())


def _issue(user: str, hold: int = HOLD_S) -> devices.Issued:
    return devices.issue(DOMAIN, user, [TOPIC], issued_by="operator", not_within_s=hold)


def _age(user: str, seconds: int) -> None:
    """Make the stored credentials look issued ``seconds`` ago (no waiting in a test)."""
    item = devices.DeviceCredential.get(user)
    item.issued_at = (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(timespec="seconds")
    item.save()


def test_a_second_issue_within_the_hold_is_refused_and_the_first_password_lives(issued):
    first = _issue("env-hold-1")
    stored = devices.DeviceCredential.get("env-hold-1")
    with pytest.raises(devices.JustIssued) as refused:
        _issue("env-hold-1")
    assert refused.value.user == "env-hold-1" and refused.value.issued_at == stored.issued_at
    assert 1 <= refused.value.retry_after_s <= HOLD_S
    assert first.password not in str(refused.value)
    after = devices.DeviceCredential.get("env-hold-1")
    assert after.version == stored.version and _works("env-hold-1", first.password)


def test_the_retry_after_counts_from_the_stored_issue(issued):
    _issue("env-hold-2")
    _age("env-hold-2", HOLD_S - 60)
    with pytest.raises(devices.JustIssued) as refused:
        _issue("env-hold-2")
    # 60 s left, give or take the second the stamp is truncated to and the test's own run
    assert 50 <= refused.value.retry_after_s <= 61


def test_without_a_hold_or_past_it_the_issue_rotates(issued):
    first = _issue("env-hold-3")
    rotated = _issue("env-hold-3", hold=0)   # forced
    assert _works("env-hold-3", rotated.password) and not _works("env-hold-3", first.password)
    _age("env-hold-3", HOLD_S + 1)
    again = _issue("env-hold-3")
    assert _works("env-hold-3", again.password) and not _works("env-hold-3", rotated.password)
    # the default holds nothing back (the callers that seed or rotate at will)
    plain = devices.issue(DOMAIN, "env-hold-3", [TOPIC], issued_by="operator")
    assert _works("env-hold-3", plain.password)


def test_an_issue_right_after_a_revoke_is_not_held(issued):
    _issue("env-hold-4")
    assert devices.revoke(DOMAIN, "env-hold-4")
    assert _works("env-hold-4", _issue("env-hold-4").password)


def test_another_domains_user_is_refused_before_any_hold(issued):
    _issue("env-hold-5")
    with pytest.raises(ValueError):
        devices.issue("border", "env-hold-5", ["devices/border/x"], issued_by="operator", not_within_s=HOLD_S)


@pytest.mark.parametrize("before", ["none", "old"], ids=["first-issue", "rotation"])
def test_of_two_issues_at_once_the_one_that_loses_the_save_reads_again_and_is_refused(issued, monkeypatch, before):
    """A reads, B issues in full, then A saves on what it read: the save is conditional (create-only
    for a first issue, If-Match on the version read for a rotation), so it fails, A reads B's fresh
    credentials and is refused; B's password is the one that works."""
    user = f"env-race-{before}"
    if before == "old":
        _issue(user)
        _age(user, HOLD_S + 60)
    real_get, other = devices.DeviceCredential.get, []

    def get_then_other_issues(*args, **kwargs):
        try:
            return real_get(*args, **kwargs)
        finally:
            if not other:   # once: between A's first read and its save
                monkeypatch.setattr(devices.DeviceCredential, "get", real_get)
                other.append(_issue(user))

    monkeypatch.setattr(devices.DeviceCredential, "get", get_then_other_issues)
    with pytest.raises(devices.JustIssued):
        _issue(user)
    assert len(other) == 1 and _works(user, other[0].password)
