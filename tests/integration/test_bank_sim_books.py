"""The simulated bank's books: every account of its test range is a customer, opened by its first
hold or credit with the opening balance (so a load test can spread a day over realistic customers);
an account outside the range is unknown, and a hold on it is refused with nothing written."""

from __future__ import annotations

import pytest
from peer_modules import peer_module

pytestmark = pytest.mark.integration


def _modules():
    return peer_module("softatm-bank-sim", "books"), peer_module("softatm-bank-sim", "models")


def test_a_new_test_customers_first_hold_opens_the_account_in_one_write(install):
    from store_calls import counting

    install()
    books, models = _modules()
    with counting() as calls:
        assert books.hold("9912345678", "w-open-1", 3_000_000) is True
    assert calls["put"] == 1 and calls["get"] == 0, calls   # presumed new: create-only, no read
    account = models.Account.get("9912345678")
    assert account.balance == books.OPENING_VND - 3_000_000 and account.holds == {"w-open-1": 3_000_000}

    books.settle_hold("9912345678", "w-open-1", paid=True)
    assert books.hold("9912345678", "w-open-2", 1_000_000) is True
    account = models.Account.get("9912345678")
    assert account.balance == books.OPENING_VND - 4_000_000 and account.holds == {"w-open-2": 1_000_000}


def test_an_account_opened_elsewhere_is_read_not_opened_again(install):
    install()
    books, models = _modules()
    # opened by another replica (or before this process started), with less than the opening balance
    models.Account("9912340001", balance=2_000_000, holds={}).save()
    assert books.hold("9912340001", "w-else-1", 3_000_000) is False    # its balance, not a new one
    assert books.hold("9912340001", "w-else-2", 1_500_000) is True
    assert models.Account.get("9912340001").balance == 500_000


def test_a_credit_opens_a_test_account_and_an_undo_never_does(install):
    install()
    books, models = _modules()
    books.credit("9912340002", "d-open-1", 700_000)
    assert models.Account.get("9912340002").balance == books.OPENING_VND + 700_000
    books.credit("9912340003", "d-open-2", -700_000, undo=True)
    with pytest.raises(models.Account.DoesNotExist):
        models.Account.get("9912340003")


@pytest.mark.parametrize("number", ["0011223344", "991234567", "99123456789"])
def test_an_account_outside_the_test_range_is_unknown(install, number):
    install()
    books, models = _modules()
    assert books.hold(number, "w-unknown", 100_000) is False
    books.credit(number, "d-unknown", 100_000)
    with pytest.raises(models.Account.DoesNotExist):
        models.Account.get(number)
