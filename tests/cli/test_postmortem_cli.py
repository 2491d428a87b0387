"""postmortem, notes, action items and playbooks through the real entry point, and a full drill on real PostgreSQL
whose postmortem metrics are checked against the timeline."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from sevtool.core.incident import Status
from sevtool.core.timeparse import format_duration, format_utc, utcnow
from sevtool.scenario import ensure_role, grant_role


def rows_of(markdown: str, header_start: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header_start}"))
    out = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        out.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return out


def test_postmortem_of_a_fresh_incident_says_unknown_and_the_export_is_on_the_timeline(cli, tmp_path):
    ident = str(
        cli.json(
            "declare",
            "--sev",
            "2",
            "--title",
            "Telemetry readable by all",
            "--commander",
            "alice",
            "--playbook",
            "data-exposure",
        )["id"]
    )
    out = tmp_path / "pm.md"
    exported = cli.json("postmortem", ident, "-o", out)
    markdown = out.read_text()
    assert exported["sha256"] == hashlib.sha256(markdown.encode()).hexdigest() and exported["markdown"] == markdown
    assert "_No scan recorded: objects exposed unknown._" in markdown
    assert {r[0]: r[3] for r in rows_of(markdown, "metric")}["time to contain"] == "unknown"
    assert "passed" in next(line for line in markdown.splitlines() if line.startswith("| audit verify"))
    events = cli.json("timeline", ident)
    last = events[-1]
    assert last["kind"] == "postmortem_exported" and last["data"]["sha256"] == exported["sha256"]
    # The document's chain head is the head the export event links to.
    assert f"sha256 {last['prev_hash']}" in markdown
    shown = cli.json("show", ident)
    steps = {s["id"]: s["done"] for s in shown["playbook_steps"]}
    assert steps["declare"] and steps["assign-roles"] and steps["postmortem"] and not steps["scan"]
    assert shown["next_step"] == f"Scope the exposure: sevtool scan {ident} --target NAME --principal P"
    human = cli("show", ident)
    assert "next step" in human.stdout and "playbook progress" in human.stdout
    plain = cli("postmortem", ident)
    assert plain.returncode == 0 and plain.stdout.startswith(f"# Postmortem INC-{ident}: Telemetry readable by all")


def test_notes_are_edited_by_superseding_and_action_items_round_trip(cli):
    ident = str(cli.json("declare", "--sev", "2", "--title", "t")["id"])
    first = cli.json("note", ident, "a grant to PUBLIC", "--kind", "root-cause")
    edit = cli.json("edit-note", ident, str(first["seq"]), "etl_job re-grants PUBLIC nightly")
    assert edit["data"] == {"note_kind": "root-cause", "supersedes": first["seq"], "key": False}
    again = cli.json("edit-note", ident, str(first["seq"]), "etl_job re-grants PUBLIC nightly from IaC")
    assert again["data"]["supersedes"] == edit["seq"], "an edit supersedes the latest text"
    notes = cli.json("notes", ident, "--kind", "root-cause")
    assert [(n["seq"], n["text"], n["revisions"]) for n in notes] == [
        (first["seq"], "etl_job re-grants PUBLIC nightly from IaC", 2)
    ]

    item = cli.json(
        "action",
        "add",
        ident,
        "--title",
        "Alert on GRANT TO PUBLIC",
        "--owner",
        "bob",
        "--type",
        "detect",
        "--due",
        "2026-12-01",
    )
    assert (item["type"], item["status"], item["due"]) == ("detect", "open", "2026-12-01")
    changed = cli.json("action", "edit", ident, f"AI-{item['id']}", "--status", "done", "--owner", "carol")
    assert (changed["status"], changed["owner"]) == ("done", "carol")
    assert [i["id"] for i in cli.json("action", "list", ident)] == [item["id"]]
    kinds = [e["kind"] for e in cli.json("timeline", ident)]
    assert kinds.count("note") == 3 and "action_item_added" in kinds and "action_item_changed" in kinds

    markdown = cli("postmortem", ident).stdout
    root = markdown.split("## Root cause")[1].split("###")[0]
    assert "etl_job re-grants PUBLIC nightly from IaC" in root and "edited 2x" in root
    assert [f"AI-{item['id']}", "Alert on GRANT TO PUBLIC", "carol", "detect", "2026-12-01", "done"] in rows_of(
        markdown, "id "
    )


@pytest.mark.parametrize(
    "args,needle,code",
    [
        (["action", "add", "{id}", "--title", "x", "--type", "fix"], "unknown action item type 'fix'", 2),
        (["action", "add", "{id}", "--title", "x", "--due", "next week"], "invalid due date 'next week'", 2),
        (["action", "edit", "{id}", "99", "--status", "done"], "has no action item 99", 1),
        (["action", "edit", "{id}", "AI-x", "--status", "done"], "is not an action item id", 2),
        (["edit-note", "{id}", "1", "new text"], "has no current note at event 1", 1),
        (["postmortem", "999"], "no incident 999", 1),
    ],
)
def test_bad_input_is_a_one_line_error(cli, args, needle, code):
    ident = str(cli.json("declare", "--sev", "3", "--title", "t")["id"])
    result = cli(*[a.replace("{id}", ident) for a in args])
    assert result.returncode == code and needle in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_declare_refuses_an_unknown_playbook_before_writing(cli):
    result = cli("declare", "--sev", "2", "--title", "t", "--playbook", "data-exposur")
    assert (
        result.returncode == 2
        and "no playbook named 'data-exposur'" in result.stderr
        and "data-exposure" in result.stderr
    )
    assert cli.json("list") == []


def test_playbook_list_show_and_validate(cli, tmp_path):
    listed = cli.json("playbook", "list")
    assert {p["name"] for p in listed} >= {"data-exposure", "credential-leak", "over-broad-role"} and all(
        p["valid"] for p in listed
    )
    shown = cli.json("playbook", "show", "credential-leak")
    assert shown["steps"][0]["kind"] == "declare"
    broken = tmp_path / "broken.toml"
    broken.write_text('title = "x"\n\n[[steps]]\nid = "a"\nkind = "scann"\ntitle = "A"\ntext = "do it"\n')
    result = cli("playbook", "validate", broken)
    assert result.returncode == 2
    assert f"{broken}:5: steps[0].kind: Input should be" in result.stderr
    machine = cli("playbook", "validate", broken, "--json")
    assert json.loads(machine.stderr)["error"] == "config"
    good = tmp_path / "good.toml"
    good.write_text('title = "x"\n\n[[steps]]\nid = "a"\nkind = "scan"\ntitle = "A"\ntext = "do it"\n')
    assert cli.json("playbook", "validate", good) == {"file": str(good), "valid": True, "name": "good", "steps": 1}


# --- a full drill on a real PostgreSQL target --------------------------------------------------------


@pytest.fixture
def target(pg_db) -> str:
    """telemetry.keystrokes (DSS 4) and telemetry.mouse (DSS 3), owned by etl_owner, readable by all_employees."""
    with psycopg.connect(pg_db, autocommit=True) as conn:
        for role, login in [
            ("all_employees", False),
            ("alice", True),
            ("dave", True),
            ("etl_owner", False),
            ("deploy_bot", True),
        ]:
            ensure_role(conn, role, login=login)
        grant_role(conn, "all_employees", "alice")
        grant_role(conn, "all_employees", "dave")
        grant_role(conn, "etl_owner", "deploy_bot")
        conn.execute("CREATE SCHEMA telemetry AUTHORIZATION etl_owner")
        conn.execute("GRANT USAGE ON SCHEMA telemetry TO all_employees")
        conn.execute("SET ROLE etl_owner")
        for name, dss in [("keystrokes", 4), ("mouse", 3)]:
            conn.execute(sql.SQL("CREATE TABLE telemetry.{} (id bigint, payload text)").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("COMMENT ON TABLE telemetry.{} IS {}").format(sql.Identifier(name), sql.Literal(f"dss={dss}"))
            )
            conn.execute(sql.SQL("GRANT SELECT ON telemetry.{} TO all_employees").format(sql.Identifier(name)))
        conn.execute("RESET ROLE")
    return pg_db


@pytest.mark.postgres
def test_full_drill_postmortem_metrics_match_the_timeline(cli, cli_env, store_url, target, tmp_path):
    """declare -> scan -> apply -> clean -> regression -> re-apply -> clean checks -> resolve -> postmortem."""
    from sevtool.services import Workbench
    from sevtool.settings import Settings

    cli.env = {**cli_env, "SEVTOOL_DB": store_url, "SEVTOOL_TZ": "America/Los_Angeles"}
    wb = Workbench(Settings(db=store_url, config=tmp_path / "none.toml", tz="America/Los_Angeles", actor="alice"))
    now = utcnow().replace(microsecond=0)
    incident = wb.incidents.declare(
        "Employee telemetry readable by every employee",
        2,
        commander="alice",
        playbook="data-exposure",
        at=now - timedelta(minutes=50),
    )
    ident = incident.id
    wb.incidents.set_time(ident, "exposure_started_at", now - timedelta(days=30, hours=2))
    wb.incidents.set_time(ident, "detected_at", now - timedelta(hours=1, minutes=30))
    wb.incidents.change_sev(ident, 1, "DSS 4 keystrokes in scope", at=now - timedelta(minutes=40))
    wb.scanning.scan(ident, target, ["all_employees"], schemas=["telemetry"])
    wb.revocation.plan(ident)
    assert wb.revocation.apply(ident).ok
    assert wb.verification.verify(ident).clean
    with psycopg.connect(target + " user=deploy_bot", autocommit=True) as conn:  # the first fix does not stick
        conn.execute("GRANT SELECT ON telemetry.keystrokes TO all_employees")
    assert cli("verify", str(ident)).returncode == 3
    wb.revocation.plan(ident)
    assert wb.revocation.apply(ident).ok
    assert cli("verify", str(ident)).returncode == 0
    assert cli("verify", str(ident)).returncode == 0
    wb.incidents.note(ident, "deploy_bot re-applies grants from the IaC repo on every deploy", kind="root-cause")
    wb.incidents.set_status(ident, Status.RESOLVED, force=True, why="drill: schedule compressed")

    out = tmp_path / "drill.md"
    exported = cli.json("postmortem", str(ident), "-o", out)
    markdown = out.read_text()
    events = wb.incidents.timeline(ident)

    def by_kind(kind: str) -> list:
        return [e for e in events if e.kind == kind]

    incident = wb.incidents.get(ident)

    # Metrics, recomputed from the timeline.
    first_apply = by_kind("apply")[0].at
    checks = by_kind("check")
    assert [c.data["clean"] for c in checks] == [True, False, True, True]
    verified_clean = checks[2].at
    resolved = next(e.at for e in by_kind("status_changed") if e.data["to"] == "resolved")
    metrics = {r[0]: r[3] for r in rows_of(markdown, "metric")}
    assert (
        metrics["time to detect"] == format_duration(incident.detected_at - incident.exposure_started_at) == "30d 30m"
    )
    assert metrics["time to declare"] == format_duration(incident.declared_at - incident.detected_at) == "40m"
    assert metrics["time to contain"] == format_duration(first_apply - incident.declared_at)
    assert metrics["time to verified clean"] == format_duration(verified_clean - incident.declared_at)
    assert metrics["time to resolve"] == format_duration(resolved - incident.declared_at)
    assert metrics["exposure window"] == format_duration(verified_clean - incident.exposure_started_at)
    stones = {r[0]: r for r in rows_of(markdown, "milestone")}
    assert stones["verified clean"][1] == format_utc(verified_clean) and "check #3" in stones["verified clean"][3]
    assert (
        stones["first clean check"][1] == format_utc(checks[0].at)
        and "access came back later" in stones["first clean check"][3]
    )
    assert stones["contained (first apply)"][1] == format_utc(first_apply)

    # Impact and verification, from the scan, ledger, checks and regressions.
    scan = by_kind("scan")[0].data
    assert "**2 objects** exposed" in markdown
    assert {r[0]: r[1] for r in rows_of(markdown, "DSS rating")} == {"DSS 4": "1", "DSS 3": "1"}
    assert rows_of(markdown, "principal") == [["all_employees", str(scan["principal_members"]["all_employees"]), "2"]]
    assert [r[3] for r in rows_of(markdown, "check")] == ["clean", "EXPOSED", "clean", "clean"]
    regression = rows_of(markdown, "found by check")
    assert len(regression) == 1 and regression[0][0] == "#2" and regression[0][4].startswith("1: telemetry.keystrokes")
    assert regression[0][6] == f"{format_utc(checks[2].at)} by check 3"
    assert "in 2 plan version(s)" in markdown
    assert "deploy_bot re-applies grants" in markdown.split("## Root cause")[1]
    # SEV history with the reason, the timeline in both zones, the audit appendix.
    assert rows_of(markdown, "when (UTC)")[1][1:] == ["SEV 2", "SEV 1", "DSS 4 keystrokes in scope"]
    assert len(rows_of(markdown, "#")) == len(events) - 1  # everything before the export event itself
    assert f"sha256 {by_kind('postmortem_exported')[0].prev_hash}" in markdown and "| audit verify" in markdown
    assert "passed" in next(line for line in markdown.splitlines() if line.startswith("| audit verify"))
    # No secret or DSN password: the store URL may carry one, the document must not.
    for secret in re.findall(r"://[^:/@]+:([^@]+)@", store_url + " " + target):
        assert secret not in markdown
    assert exported["sha256"] == hashlib.sha256(markdown.encode()).hexdigest()
    # The playbook now has every step but watch done (the schedule was skipped with --force).
    steps = {s["id"]: s["done"] for s in cli.json("show", str(ident))["playbook_steps"]}
    assert {k for k, done in steps.items() if not done} <= {"communicate", "watch"}


def test_impact_counts_each_object_once_across_scope_versions_and_groups_regressions(wb):
    """Store queries on SQLite and PostgreSQL: the union of every scan, regressions grouped by check, cause and path."""
    from sevtool.core.timeparse import utcnow
    from sevtool.store.models import CheckRow, FindingRow, RegressionRow, ScopeRow

    ident = wb.incidents.declare("t", 2).id
    with wb.store.write() as tx:
        first = ScopeRow(incident_id=ident, version=1, target="wh", principals=["all_employees"], created_at=utcnow())
        second = ScopeRow(
            incident_id=ident, version=2, target="wh", principals=["all_employees", "contractors"], created_at=utcnow()
        )
        tx.session.add_all([first, second])
        tx.session.flush()
        finding = {
            "object_kind": "table",
            "schema_name": "telemetry",
            "principal": "all_employees",
            "path": "public",
            "grantee": "PUBLIC",
        }
        tx.session.add_all(
            [
                FindingRow(scope_id=first.id, object_name="keys", dss=4, **finding),
                FindingRow(scope_id=first.id, object_name="mouse", dss=None, **finding),
                FindingRow(scope_id=second.id, object_name="keys", dss=4, **finding),  # the same finding again
                FindingRow(
                    scope_id=second.id, object_name="keys", dss=4, **{**finding, "path": "role", "grantee": "analysts"}
                ),
                FindingRow(scope_id=second.id, object_name="chats", dss=3, **{**finding, "principal": "contractors"}),
            ]
        )
        check = CheckRow(incident_id=ident, number=2, scope_version=2, ran_at=utcnow(), clean=False, regressions=3)
        tx.session.add(check)
        tx.session.flush()
        regression = {
            "incident_id": ident,
            "check_id": check.id,
            "principal": "all_employees",
            "path": "public",
            "cause": "re-granted by etl",
            "first_seen_at": utcnow(),
        }
        tx.session.add_all(
            [
                RegressionRow(object_fqn="telemetry.keys", closed_at=utcnow(), closed_by="check 3", **regression),
                RegressionRow(object_fqn="telemetry.mouse", **regression),
                RegressionRow(object_fqn="telemetry.chats", **{**regression, "cause": "default privileges"}),
            ]
        )
        tx.append(ident, "scan", "scan v2", {"principal_members": {"all_employees": 1200, "contractors": 40}})
    bundle = wb.postmortem.bundle(ident)
    exposure = bundle.exposure
    assert (exposure.objects, exposure.findings, exposure.scope_versions) == (3, 4, 2)
    assert exposure.by_dss == {"DSS 4": 1, "DSS 3": 1, "unrated": 1}
    assert [(p.path, p.objects, p.findings) for p in exposure.by_path] == [("public", 3, 3), ("role", 1, 1)]
    assert [(p.name, p.objects, p.members) for p in exposure.principals] == [
        ("all_employees", 2, 1200),
        ("contractors", 1, 40),
    ]
    groups = {r.cause: r for r in bundle.regressions}
    etl = groups["re-granted by etl"]
    assert (etl.check_number, etl.objects, etl.still_open, etl.examples) == (
        2,
        2,
        1,
        ["telemetry.keys", "telemetry.mouse"],
    )
    assert groups["default privileges"].objects == 1


def test_a_tampered_timeline_is_reported_in_the_appendix(cli):
    import sqlite3

    ident = str(cli.json("declare", "--sev", "2", "--title", "t")["id"])
    cli.json("note", ident, "revoked by hand", "--kind", "went-wrong")
    with sqlite3.connect(cli.env["SEVTOOL_DB"].removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE event SET summary = 'nothing happened' WHERE seq = 2")
    markdown = cli("postmortem", ident).stdout
    audit = next(line for line in markdown.splitlines() if line.startswith("| audit verify"))
    assert "FAILED: event 2 (note) was edited after it was written" in audit
