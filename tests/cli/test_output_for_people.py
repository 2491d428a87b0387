"""Text output for people (a summary with the worst rows first, `--all`, a pager on a terminal) and `--jsonl`
for pipelines, through the real entry point against a real PostgreSQL target."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from sevtool.cli.pager import DEFAULT, choose
from sevtool.cli.summary import BREADTH, LIMIT
from sevtool.core.exposure import AccessPath
from sevtool.scenario import PRINCIPAL, seed_access_paths, seed_bulk

pytestmark = pytest.mark.postgres

BULK = 80  # DSS 1 tables granted straight to the principal: with the access-path scenario, more findings than LIMIT


@pytest.fixture
def exposed(cli, pg_db):
    """An incident scanned over the access-path scenario (DSS 4 to unrated, every path) plus BULK DSS 1 tables."""
    seed_access_paths(pg_db)
    seed_bulk(pg_db, BULK, schemas=["bulk"], dss_of=lambda i: 1)
    ident = str(cli.json("declare", "--sev", "2", "--title", "Telemetry readable by all employees")["id"])
    scanned = cli.json("scan", ident, "--target", pg_db, "--principal", PRINCIPAL)
    assert len(scanned["findings"]) > LIMIT + 10
    return ident, pg_db, scanned


def table(text: str, first_header: str) -> list[list[str]]:
    """The rows of the table whose header line starts with `first_header`, cut by the dashes under its headers."""
    lines = text.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.split()[:1] == [first_header] and lines[i + 1].startswith("-")
    )
    spans, col = [], 0
    for dashes in lines[start + 1].split("  "):
        spans.append((col, col + len(dashes)))
        col += len(dashes) + 2
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip() or line.startswith("... "):
            break
        rows.append([line[a:b].strip() if i < len(spans) - 1 else line[a:].strip() for i, (a, b) in enumerate(spans)])
    return rows


def rank(dss: str) -> int:
    return 5 if dss == "unrated" else int(dss.split()[-1])


def test_scan_summary_caps_the_rows_worst_first_and_says_how_to_see_the_rest(cli, exposed):
    ident, dsn, scanned = exposed
    total = len(scanned["findings"])
    result = cli("scan", ident, "--target", dsn, "--principal", PRINCIPAL)
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout, "schema")
    assert len(rows) == LIMIT
    assert f"... {total - LIMIT:,} more findings not shown" in result.stdout and "--all" in result.stdout
    for header in ("sensitivity", "access path", "principal", "via"):
        assert header in result.stdout
    # Most sensitive first (unrated counts as the most), then the broadest path within one sensitivity.
    keys = [(-rank(dss), BREADTH[AccessPath(path)]) for _s, _o, _k, dss, _p, path, _via in rows]
    assert keys == sorted(keys)
    # Every finding more sensitive than DSS 1 is shown, before any of the bulk DSS 1 tables.
    sensitive = {(f["schema_name"], f["object_name"], f["path"]) for f in scanned["findings"] if f["dss"] != 1}
    assert sensitive and sensitive <= {(r[0], r[1], r[5]) for r in rows}
    assert rows[0][3] in ("unrated", "DSS 4") and rows[-1][3] == "DSS 1"
    assert "Scope v2 recorded on INC-" in result.stderr and "Scope v2" not in result.stdout


def test_scan_all_prints_every_finding(cli, exposed):
    ident, dsn, scanned = exposed
    result = cli("scan", ident, "--target", dsn, "--principal", PRINCIPAL, "--all")
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout, "schema")
    assert len(rows) == len(scanned["findings"]) and "more findings not shown" not in result.stdout
    assert sorted((r[0], r[1], r[4], r[5]) for r in rows) == sorted(
        (f["schema_name"], f["object_name"], f["principal"], f["path"]) for f in scanned["findings"]
    )


def test_scan_jsonl_is_one_finding_per_line_as_json_has_them(cli, exposed):
    ident, dsn, scanned = exposed
    result = cli("scan", ident, "--target", dsn, "--principal", PRINCIPAL, "--jsonl")
    assert result.returncode == 0 and result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    canonical = sorted(json.dumps(f, sort_keys=True) for f in scanned["findings"])
    assert len(lines) == len(scanned["findings"]) and sorted(json.dumps(f, sort_keys=True) for f in lines) == canonical
    both = cli("scan", ident, "--target", dsn, "--principal", PRINCIPAL, "--json", "--jsonl")
    assert both.returncode == 2 and json.loads(both.stderr)["error"] == "usage" and both.stdout == ""


def test_verify_summarises_what_remains_and_keeps_exit_3(cli, exposed):
    ident, _dsn, _scanned = exposed
    check = cli.json("verify", ident, expect=3)
    remains = check["remains"]
    assert check["findings"] == len(remains) > LIMIT
    human = cli("verify", ident)
    assert human.returncode == 3 and "ACCESS REMAINS" in human.stderr
    rows = table(human.stdout, "object")
    assert len(rows) == LIMIT and f"... {len(remains) - LIMIT:,} more remaining findings not shown" in human.stdout
    assert "sensitivity" in human.stdout and "access path" in human.stdout
    shown = [-rank(r[4]) for r in rows]
    assert shown == sorted(shown) and rows[-1][4] == "DSS 1"
    every = cli("verify", ident, "--all")
    assert (
        every.returncode == 3 and len(table(every.stdout, "object")) == len(remains) and "not shown" not in every.stdout
    )
    streamed = cli("verify", ident, "--jsonl")
    assert streamed.returncode == 3 and streamed.stderr == ""
    lines = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert sorted(json.dumps(r, sort_keys=True) for r in lines) == sorted(
        json.dumps(r, sort_keys=True) for r in remains
    )


def test_plan_summary_puts_review_first_all_and_jsonl_list_every_action(cli, exposed):
    ident, _dsn, _scanned = exposed
    plan = cli.json("revoke", ident, "--plan")
    actions = plan["actions"]
    assert len(actions) > LIMIT and plan["review"] > 0
    text = cli("revoke", ident, "--plan")
    assert text.returncode == 0, text.stderr
    rows = table(text.stdout, "#")
    assert len(rows) == LIMIT and f"... {len(actions) - LIMIT:,} more actions not shown" in text.stdout
    reviewed = [r[5] == "REVIEW" for r in rows]
    assert reviewed == sorted(reviewed, reverse=True) and sum(reviewed) == plan["review"]  # every REVIEW action, first
    assert "REVIEW #" in text.stderr and "Blast radius:" in text.stderr and "kind" in text.stdout
    every = cli("revoke", ident, "--plan", "--all")
    seqs = [int(r[0]) for r in table(every.stdout, "#")]
    assert seqs == sorted(seqs) and len(seqs) == len(actions) and "more actions not shown" not in every.stdout
    streamed = cli("revoke", ident, "--plan", "--jsonl")
    assert streamed.returncode == 0 and streamed.stderr == ""
    lines = [json.loads(line) for line in streamed.stdout.splitlines()]
    latest = cli.json("revoke", ident, "--plan")["actions"]
    assert len(lines) == len(latest) and {k for line in lines for k in line} == {k for a in latest for k in a}
    assert cli("revoke", ident, "--apply", "--jsonl").returncode == 2


def test_pager_decision():
    assert choose({}, stdout_tty=True) == DEFAULT == "less -FRX"
    assert choose({}, stdout_tty=False) is None
    assert choose({}, stdout_tty=True, no_pager=True) is None
    assert choose({}, stdout_tty=True, machine=True) is None
    assert choose({"PAGER": "most"}, stdout_tty=True) == "most"
    assert choose({"PAGER": "most", "SEVTOOL_PAGER": "less -R"}, stdout_tty=True) == "less -R"
    for off in ("", "cat", " cat "):
        assert choose({"PAGER": off}, stdout_tty=True) is None
        assert choose({"PAGER": "most", "SEVTOOL_PAGER": off}, stdout_tty=True) is None


def on_tty(cli, *args: str, env: dict, stderr_tty: bool = False) -> tuple[int, str, str]:
    """Run sevtool with stdout (and optionally stderr) on a pseudo-terminal; returns (exit, terminal text, stderr)."""
    master, slave = pty.openpty()
    err_path = Path(cli.env["SEVTOOL_DB"].removeprefix("sqlite:///")).with_name("stderr.txt")
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sevtool", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave if stderr_tty else err,
            env={**cli.env, **env},
        )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=120)
    return code, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n"), err_path.read_text()


def test_the_pager_runs_only_for_a_terminal(cli, exposed, tmp_path):
    ident, _dsn, _scanned = exposed
    log, paged = tmp_path / "pager.log", tmp_path / "paged.txt"
    script = tmp_path / "pager.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> "{log}"\ncat >> "{paged}"\n')
    script.chmod(0o755)
    pager = {"PAGER": f"{script} --from-pager-env"}

    code, screen, err = on_tty(cli, "verify", ident, env=pager)
    assert code == 3 and log.read_text().strip() == f"{script} --from-pager-env"
    assert "more remaining findings not shown" in paged.read_text() and "ACCESS REMAINS" in err
    assert "more remaining findings" not in screen  # the pager had it, not the terminal

    log.unlink()
    paged.unlink()
    code, screen, _err = on_tty(
        cli, "verify", ident, env={**pager, "SEVTOOL_PAGER": f"{script} --from-sevtool-pager"}, stderr_tty=True
    )
    # On one terminal, the check's messages go through the pager too, after nothing else has drawn over it.
    assert (
        code == 3
        and log.read_text().strip() == f"{script} --from-sevtool-pager"
        and "ACCESS REMAINS" in paged.read_text()
    )

    log.unlink()
    for args, env in [
        (("--no-pager",), pager),
        (("--json",), pager),
        (("--jsonl",), pager),
        ((), {**pager, "SEVTOOL_PAGER": ""}),
        ((), {"PAGER": "cat"}),
    ]:
        code, screen, _err = on_tty(cli, "verify", ident, *args, env=env)
        assert code == 3 and not log.exists(), (args, env)
        assert ("more remaining findings not shown" in screen) == (not args or args == ("--no-pager",)), (
            args,
            screen[-300:],
        )

    code, screen, err = on_tty(cli, "verify", ident, env={"SEVTOOL_PAGER": str(tmp_path / "no-such-pager")})
    assert code == 3 and "not found" in err and "more remaining findings not shown" in screen

    piped = cli("verify", ident, env=pager)
    assert piped.returncode == 3 and not log.exists() and "more remaining findings not shown" in piped.stdout


def test_jsonl_reader_that_stops_early_ends_the_output_not_the_command():
    """`sevtool scan ID --jsonl | head -1`: the rest is dropped without a traceback, and the exit code is the command's."""
    program = (
        "import sys; from sevtool.cli.output import emit_jsonl; emit_jsonl({'n': n} for n in range(200000)); "
        "print('finished', file=sys.stderr); sys.exit(3)"
    )
    proc = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert json.loads(first) == {"n": 0} and proc.returncode == 3 and err.decode().strip() == "finished"
