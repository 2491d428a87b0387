"""Work leases (store/leases.py) on both store backends, with time passed in: claim, expiry, takeover, finish.

A holder on another host is judged by its lease alone (its pid cannot be checked); on PostgreSQL a row another
transaction has locked is skipped, not waited for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sevtool.errors import LockHeld
from sevtool.store import leases
from sevtool.store.repository import Store

T0 = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
ELSEWHERE = "another-host:4242:feedbeef"  # not this host: only its lease says whether it is alive


@pytest.fixture
def store(store_url) -> Store:
    store = Store(store_url, actor="tester")
    leases.ensure(store, "guard", ["a@w", "b@w"], T0)
    return store


def test_a_due_row_is_claimed_once_until_its_lease_lapses(store):
    assert leases.claim(store, "guard", ELSEWHERE, T0, LEASE) == ("a@w", T0)
    assert leases.claim(store, "guard", "me", T0, LEASE) == ("b@w", T0), (
        "a held row is passed over for the next due one"
    )
    assert leases.claim(store, "guard", "third", T0 + LEASE, LEASE) is None, (
        "both leases still run at their last instant"
    )
    assert leases.claim(store, "guard", "third", T0 + LEASE + timedelta(seconds=1), LEASE) == ("a@w", T0), (
        "a lapsed lease is taken over, for the slot it was serving"
    )
    with store.write() as tx, pytest.raises(LockHeld):
        leases.finish(tx.session, "guard", "a@w", ELSEWHERE, T0 + timedelta(minutes=5))
    with store.write() as tx:
        leases.finish(
            tx.session, "guard", "a@w", "third", leases.next_due(T0, timedelta(minutes=5), T0 + timedelta(seconds=31))
        )
    row = {r.key: r for r in leases.rows(store, "guard")}["a@w"]
    assert row.holder is None and row.due_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=5)


def test_next_due_keeps_the_grid_and_skips_missed_slots():
    every = timedelta(minutes=5)
    assert leases.next_due(T0, every, T0 + timedelta(seconds=10)) == T0 + every
    assert leases.next_due(T0, every, T0 + timedelta(minutes=17)) == T0 + 4 * every
    assert leases.next_due(T0 + every, every, T0) == T0 + every


def test_postgresql_skips_a_row_another_transaction_has_locked(pg_store_url):
    import psycopg

    store = Store(pg_store_url, actor="tester")
    leases.ensure(store, "guard", ["a@w", "b@w"], T0)
    with psycopg.connect(pg_store_url) as other:  # a worker mid-claim: its transaction holds a@w's row
        other.execute("SELECT 1 FROM work_lease WHERE key = 'a@w' FOR UPDATE")
        assert leases.claim(store, "guard", "me", T0, LEASE) == ("b@w", T0), "the locked row is skipped, not waited for"
        assert leases.claim(store, "guard", "me2", T0, LEASE) is None
    assert leases.claim(store, "guard", "me2", T0, LEASE) == ("a@w", T0)
