import multiprocessing
from datetime import timedelta

import pytest

from sevtool.errors import LockHeld
from sevtool.store import locks


def test_second_holder_is_refused_until_release(wb):
    inc = wb.incidents.declare("t", 2)
    with locks.held(wb.store, inc.id, "apply"):
        with pytest.raises(LockHeld, match="already running"):
            locks.acquire(wb.store, inc.id, "apply", "otherhost:1:x")
        locks.acquire(wb.store, inc.id, "watch", "otherhost:1:x")  # other names are independent
    locks.acquire(wb.store, inc.id, "apply", "otherhost:1:x")


def test_stale_holder_is_taken_over(wb):
    inc = wb.incidents.declare("t", 2)
    locks.acquire(wb.store, inc.id, "apply", "otherhost:1:x")
    with pytest.raises(LockHeld):
        locks.acquire(wb.store, inc.id, "apply", "me:2:y")
    locks.acquire(wb.store, inc.id, "apply", "me:2:y", stale_after=timedelta(0))
    with pytest.raises(LockHeld, match="lost"):
        locks.heartbeat(wb.store, inc.id, "apply", "otherhost:1:x")


def _die_holding(url, incident_id):
    import os
    import socket

    from sevtool.store import locks
    from sevtool.store.repository import Store

    locks.acquire(Store(url), incident_id, "apply", f"{socket.gethostname()}:{os.getpid()}:dead")
    os._exit(9)


def test_lock_of_a_dead_process_on_this_host_is_taken_over(wb, store_url):
    inc = wb.incidents.declare("t", 2)
    proc = multiprocessing.get_context("spawn").Process(target=_die_holding, args=(store_url, inc.id))
    proc.start()
    proc.join(60)
    locks.acquire(wb.store, inc.id, "apply", locks.new_holder())
