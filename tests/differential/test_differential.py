"""sevtool judged by the server: random worlds, each compared at object level, member level, after apply and undo.

For each seed, on PostgreSQL 15 and 18 (the `server_db` fixture), tests/differential/harness.py builds the world
and checks that:
- sevtool's exposed objects (findings other than default privileges) are exactly the objects the oracle says
  some member of `emp_all` reads now and could not read without it (both ways);
- `PostgresTarget.exposure_by_member`, once it exists, gives exactly the oracle's (member, object) pairs;
- after applying the whole plan nothing is exposed any more, and every role outside the principal's members reads
  what it read before, except losses an action lists in its collateral;
- undo restores every ACL, column ACL, default ACL, schema ACL and membership row byte for byte, and every role's
  readable set; a second undo changes nothing.

A failure prints the seed, every disagreement with both answers, and the SQL that rebuilds the world.
More seeds, outside pytest: `python tests/perf/differential.py --seeds 50`. One minimal world per known cause of
disagreement: tests/differential/repros.py (run by test_repros.py).
"""

from __future__ import annotations

import pytest

from differential.harness import run_seed

# About 1.5 s a seed on each server when the machine is idle (3 s when it is busy), 100-250 (member, relation) pairs
# each: the CI budget for the whole file is 60-90 s per server version.
SEEDS = range(24)


@pytest.mark.parametrize("seed", SEEDS)
def test_sevtool_agrees_with_the_server(server_db, seed):
    outcome = run_seed(server_db, seed)
    assert outcome.disagreements == 0, outcome.report()
