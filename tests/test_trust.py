"""The trust rules of DESIGN.md, checked on a full drill: no secret anywhere, no table contents read."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import psycopg
import pytest
from fakes.webhook_receiver import WebhookReceiver

from sevtool.pgtemp import TempPostgres
from sevtool.scenario import seed_access_paths

pytestmark = pytest.mark.postgres

PASSWORD = "Tr0ub4dor-and-3-quarters"  # distinctive, so a hit cannot be a coincidence
RESPONDER = "responder"


@pytest.fixture(scope="module")
def guarded_pg():
    """A server where the responder must authenticate with a password (scram), and every statement is recorded.

    pg_stat_statements with track=all records statements nested in DO blocks and functions too, which
    log_statement=all does not: the live probe runs its zero-row reads inside a DO block.
    """
    server = TempPostgres(
        hba_extra=[f"host all {RESPONDER} 127.0.0.1/32 scram-sha-256"],
        settings={
            "shared_preload_libraries": "pg_stat_statements",
            "pg_stat_statements.track": "all",
            "pg_stat_statements.max": "20000",
        },
    ).start()
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {RESPONDER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    yield server
    server.stop()


def drill(cli, dsn_with_password: str, tmp_path: Path) -> list:
    """declare -> scan -> plan -> apply -> verify -> undo -> postmortem, with a webhook configured."""
    outputs = []

    def run(*args, expect=(0,)):
        result = cli(*args)
        assert result.returncode in expect, f"{args}: {result.stderr}"
        outputs.append(result)
        return result

    ident = json.loads(run("declare", "--sev", "2", "--title", "drill", "--json").stdout)["id"]
    run("scan", ident, "--target", dsn_with_password, "--principal", "all_employees")
    run("revoke", ident, "--plan")
    run("revoke", ident, "--apply", "--yes", "--accept-collateral")
    run("verify", ident, expect=(0, 3))
    run("revoke", ident, "--undo", "--yes")
    run("status", ident, "contained", expect=(0, 2))
    run("postmortem", ident, "-o", str(tmp_path / "postmortem.md"))
    run("notify", "flush")
    return outputs


def test_no_password_in_store_exports_logs_or_webhooks(cli, guarded_pg, tmp_path, config_path):
    dsn = guarded_pg.create_database("secrets")
    seed_access_paths(dsn)
    receiver = WebhookReceiver().start()
    try:
        config_path.write_text(
            f'[webhooks.ops]\nurl = "{receiver.url()}"\n[webhooks.chat]\nurl = "{receiver.url("/slack")}"\nformat = "slack"\n'
        )
        cli.env["PGPASSWORD"] = PASSWORD
        target = guarded_pg.dsn("secrets", user=RESPONDER, password=PASSWORD)
        outputs = drill(cli, target, tmp_path)
        bodies = json.dumps([p["body"] for p in receiver.posts])
    finally:
        receiver.stop()
    assert receiver.posts, "the webhook receiver got nothing: the payload check would prove nothing"

    store = Path(cli.env["SEVTOOL_DB"].removeprefix("sqlite:///"))
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    places = {p.name: p.read_bytes() for p in store.parent.glob(store.name + "*")}
    places["postmortem.md"] = (tmp_path / "postmortem.md").read_bytes()
    places["webhook payloads"] = bodies.encode()
    places["cli output"] = "".join(o.stdout + o.stderr for o in outputs).encode()
    assert len(places["postmortem.md"]) > 500
    for name, content in places.items():
        assert PASSWORD.encode() not in content, f"the password leaked into {name}"
    # The drill really reached the target with that password: the scan recorded the seeded exposure.
    assert b"all_employees" in places["postmortem.md"]


USER_SCHEMAS = ("hr", "chat", "telemetry", "reporting", "vault")
PRIVILEGE_STATEMENT = re.compile(
    r"\s*(GRANT|REVOKE|ALTER\s+DEFAULT\s+PRIVILEGES|SET|RESET|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I
)
READ_OF_USER_TABLE = re.compile(
    r"\b(FROM|JOIN|TABLE|COPY)\s+(ONLY\s+)?\"?(" + "|".join(USER_SCHEMAS) + r")\"?\s*\.", re.IGNORECASE
)


def test_no_statement_reads_table_contents(cli, guarded_pg):
    """Every statement sevtool runs that names a user table is a GRANT/REVOKE, a catalog query or a LIMIT 0 probe."""
    dsn = guarded_pg.create_database("contents")
    info = seed_access_paths(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # One row in every user table: a statement that read contents would report rows > 0.
        conn.execute("""DO $$ DECLARE t regclass; BEGIN
                          FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                   WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^(pg_|information_schema)' LOOP
                            BEGIN EXECUTE format('INSERT INTO %s DEFAULT VALUES', t); EXCEPTION WHEN others THEN NULL; END;
                          END LOOP; END $$""")
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
    ident = str(cli.json("declare", "--sev", "2", "--title", "contents")["id"])
    cli.json("scan", ident, "--target", dsn, "--principal", "all_employees")
    # Probe while exposed (reads succeed, so the statements are recorded: failed ones are not), then after the fix.
    for expect in (3, 0):
        result = cli("verify", ident, "--probe-role", info["canary"], "--json")
        assert result.returncode == expect, result.stderr
        if expect == 3:
            cli.json("revoke", ident, "--apply", "--yes", "--accept-collateral")
    cli.json("revoke", ident, "--undo", "--yes")
    with psycopg.connect(dsn) as conn:
        # pg_stat_statements shows constants as $n, so LIMIT 0 reads as LIMIT $1; `rows` says what was returned.
        recorded = conn.execute(
            "SELECT query, rows FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    assert len(recorded) > 10, "pg_stat_statements recorded nothing: the check would prove nothing"
    on_user_tables = [
        (q, rows) for q, rows in recorded if not PRIVILEGE_STATEMENT.match(q) and READ_OF_USER_TABLE.search(q)
    ]
    offending = [
        (q, rows) for q, rows in on_user_tables if rows != 0 or not re.search(r"\bLIMIT\s+(0|\$\d+)\s*$", q, re.I)
    ]
    assert offending == [], f"statements that could read table contents: {offending[:3]}"
    assert on_user_tables, "the live probe's zero-row reads were not seen, so the rule was not exercised"
