"""One size of the benchmark: a seeded exposure, a responder's whole cycle with sevtool's commands, and the DBA's
alternatives on the same database in the same rounds."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg

from sevtool.bench.alternatives import Alternatives
from sevtool.bench.measure import Sample, Samples, run_process, sevtool_argv
from sevtool.scenario import PRINCIPAL, seed_bulk

Say = Callable[[str], None]


@dataclass
class Observed:
    """What the work behind the figures found, so a fast wrong answer cannot pass for a fast right one."""

    exposed: set[int]
    readable_pairs: set[int]
    clean_checks: list[bool]
    left_readable: set[int]
    applied: list[int]
    undone: list[int]
    failed: int = 0


def settle(dsn: str) -> None:
    """Leave the server as a warehouse that was not built a minute ago: its catalog vacuumed and analysed, and
    the seeding's dirty pages on disk, so no measure pays for writing out the CREATE TABLEs."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def in_scope_tables(dsn: str, schemas: list[str]) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) ORDER BY 1, 2",
            (schemas,),
        ).fetchall()


class Cycle:
    """sevtool's commands as processes against one seeded database, with their own store."""

    def __init__(self, dsn: str, tables: int, workdir: Path, samples: Samples, say: Say):
        self.dsn, self.tables, self.samples, self.say = dsn, tables, samples, say
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "SEVTOOL_DB": f"sqlite:///{workdir / 'store.db'}",
            "SEVTOOL_CONFIG": str(workdir / "none.toml"),
            "SEVTOOL_TZ": "UTC",
            "SEVTOOL_ACTOR": "bench",
            "PAGER": "cat",
        }
        self.say(f"{tables} tables: seeding ...")
        seeded = seed_bulk(dsn, tables=tables)
        self.say(f"{tables} tables: seeded in {seeded['seconds']} s; settling ...")
        settle(dsn)
        self.schemas = seeded["schemas"]
        self.dba = Alternatives(dsn, PRINCIPAL, self.schemas, in_scope_tables(dsn, self.schemas), workdir)
        declared = self.sevtool(
            "declare", "--sev", "2", "--title", f"bench: {tables} tables readable by {PRINCIPAL}", "--json"
        )
        self.incident = str(json.loads(declared)["id"])
        self.observed = Observed(set(), set(), [], set(), [], [])

    def sevtool(self, *args: str, measure: str | None = None, ok: tuple[int, ...] = (0,)) -> str:
        finished = run_process([*sevtool_argv(), *args], env=self.env, ok=ok)
        if measure:
            self.samples.add(self.tables, measure, finished.sample)
        return finished.stdout

    def alternative(self, measure: str, run) -> int | None:
        finished, answer = run() if measure.startswith("readers") else (run(), None)
        self.samples.add(self.tables, measure, finished.sample)
        return answer

    def round(self, *, text_scan: bool, per_table: bool) -> None:
        """scan, verify, plan, apply, verify, undo; then the DBA's alternatives, each leaving the exposure as it found it."""
        seen = self.observed
        scan = json.loads(
            self.sevtool(
                "scan", self.incident, "--target", self.dsn, "--principal", PRINCIPAL, "--json", measure="scan"
            )
        )
        seen.exposed.add(scan["summary"]["objects"])
        if text_scan:
            self.sevtool("scan", self.incident, "--target", self.dsn, "--principal", PRINCIPAL, measure="scan (text)")
        seen.readable_pairs.add(self.alternative("readers query (exposed)", self.dba.readers))
        # verify is compared with a measurement of its own, taken next to it, not with the scan's.
        seen.readable_pairs.add(self.alternative("readers query (exposed, for verify)", self.dba.readers))
        self.sevtool("verify", self.incident, "--json", measure="verify (exposed)", ok=(3,))
        # A plan above the SEV level's size guard is refused unless the responder raises it, as one would here.
        limit = str(max(self.tables, 1))
        self.sevtool("revoke", self.incident, "--plan", "--json", "--max-actions", limit, measure="plan")
        applied = json.loads(
            self.sevtool("revoke", self.incident, "--apply", "--yes", "--json", "--max-actions", limit, measure="apply")
        )
        seen.applied.append(applied["counts"]["applied"])
        seen.failed += applied["counts"]["failed"]
        check = json.loads(self.sevtool("verify", self.incident, "--json", measure="verify (after the fix)", ok=(0, 3)))
        seen.clean_checks.append(bool(check["clean"]))
        seen.left_readable.add(self.alternative("readers query (after the fix)", self.dba.readers))
        undone = json.loads(self.sevtool("revoke", self.incident, "--undo", "--yes", "--json", measure="undo"))
        seen.undone.append(undone["counts"]["undone"])
        seen.failed += undone["counts"]["failed"]
        plan, apply = self.samples.taken[(self.tables, "plan")][-1], self.samples.taken[(self.tables, "apply")][-1]
        self.samples.add(
            self.tables,
            "plan+apply",
            Sample(plan.seconds + apply.seconds, max(plan.peak_rss_mb or 0, apply.peak_rss_mb or 0)),
        )
        self.alternative("per-schema REVOKE", self.dba.revoke_per_schema)
        self.alternative("per-schema GRANT", self.dba.grant_per_schema)
        if per_table:
            self.alternative("per-table REVOKE", self.dba.revoke_per_table)
            self.alternative("per-table GRANT", self.dba.grant_per_table)

    def postmortem(self, events: int, rounds: int) -> int:
        """The postmortem of this incident grown to `events` timeline events (added in a child process, not timed:
        a forked command's peak RSS counts the memory of the process that forked it, so this one stays small)."""
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
            total = child.submit(
                add_notes, self.env["SEVTOOL_DB"], self.env["SEVTOOL_CONFIG"], int(self.incident), events
            ).result()
        for _ in range(rounds):
            self.sevtool("postmortem", self.incident, measure="postmortem")
        return total


def add_notes(db: str, config: str, incident: int, events: int) -> int:
    """Notes up to `events` timeline events in all; the count afterwards."""
    from sevtool.services import Workbench
    from sevtool.settings import Settings

    wb = Workbench(Settings(db=db, config=Path(config), tz="UTC", actor="bench"))
    missing = events - len(wb.store.events(incident))
    with wb.store.write() as tx:
        for n in range(missing):
            tx.append(incident, "note", f"bench note {n}", {"note_kind": "note"})
    return len(wb.store.events(incident))
