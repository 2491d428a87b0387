"""Bad input gets one line that says what is wrong and where, an exit code, and changes nothing."""

import json

import pytest


def assert_one_line_error(result, code: int, *needles: str):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "config,needle",
    [
        ("[sev.2\nrecheck = 1", "line 1"),
        ("[sev.2]\nrecheck = ['1h', '5m']\n", "sev.2.recheck"),
        ("[sev.9]\nlabel = 'x'\n", "outside 0-5"),
        ("[targets.wh]\nkind = 'oracle'\n", "targets.wh: unknown target kind 'oracle'"),
        ("[targets.lake]\nkind = 'unity-catalog'\ntoken_env = 'T'\n", "targets.lake: a unity-catalog target needs url"),
        ("revoke_batch_size = 0\n", "revoke_batch_size"),
    ],
)
def test_malformed_config_is_a_one_line_usage_error(cli, config_path, config, needle):
    ident = str(cli.json("declare", "--sev", "2", "--title", "before the config broke")["id"])
    config_path.write_text(config)
    result = cli("declare", "--sev", "2", "--title", "t")
    assert_one_line_error(result, 2, str(config_path), needle)
    config_path.unlink()
    assert [i["id"] for i in cli.json("list")] == [int(ident)]


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["declare", "--sev", "7", "--title", "t"], 2, "SEV"),
        (["declare", "--sev", "-1", "--title", "t"], 2, "SEV"),
        (["declare", "--sev", "2", "--title", "   "], 2, "title"),
        (["show", "abc"], 2, "not an incident id"),
        (["show", "424242"], 1, "424242"),
        (["note", "424242", "x"], 1, "424242"),
        (["sev", "424242", "1", "--why", "x"], 1, "424242"),
        (["status", "424242", "contained"], 1, "424242"),
        (["status", "1", "fixed"], 2, "unknown status"),
        (["note", "1", "x", "--at", "half past never"], 2, "cannot read time"),
        (["note", "1", "x", "--at", "-4 parsecs"], 2, "cannot read time"),
        (["sev", "1", "3", "--why", " "], 2, "reason"),
        (["time", "1", "lunch", "--at", "-1h"], 2, "unknown timestamp"),
        (["assign", "1", "janitor", "bob"], 2, "unknown role"),
    ],
)
def test_bad_arguments_change_nothing(cli, args, code, needle):
    cli.json("declare", "--sev", "2", "--title", "t")
    before = cli.json("audit", "verify")["events"]
    assert_one_line_error(cli(*args), code, needle)
    machine = cli(*args, "--json")
    assert machine.returncode == code and json.loads(machine.stderr)["message"]
    assert cli.json("audit", "verify")["events"] == before


def test_unusable_store_url_is_a_clear_error(cli):
    result = cli("list", env={"SEVTOOL_DB": "nonsense://"})
    assert result.returncode == 1 and "SEVTOOL_DB" in result.stderr and "Traceback" not in result.stderr
