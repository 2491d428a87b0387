"""Settings and --target specs go through the installed target plug-ins: [targets.NAME] tables are checked
against the kind, then the kind's own model; a bare spec opens the one kind that recognises it."""

import pytest

from sevtool.errors import ConfigError, NotFound
from sevtool.services.targets import open_target
from sevtool.settings import Settings, load_team_config
from sevtool.targets.plugin import plugins


def load(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, load_team_config(path)


def refused(tmp_path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    return err.value


def test_the_built_in_kinds_are_registered_through_the_entry_point():
    assert {"postgresql", "unity-catalog"} <= set(plugins())


def test_each_kind_gets_its_own_validated_settings(tmp_path):
    _, team = load(
        tmp_path,
        '[targets.wh]\nkind = "postgresql"\ndsn = "host=db1"\nconnect_timeout = 9\n\n'
        '[targets.lake]\nkind = "unity-catalog"\nurl = "https://uc/api/2.1/unity-catalog"\ntoken_env = "T"\n',
    )
    wh, lake = team.targets["wh"], team.targets["lake"]
    assert (wh.kind, wh.options.dsn, wh.options.connect_timeout) == ("postgresql", "host=db1", 9)
    assert (lake.kind, lake.options.url, lake.options.token_env, lake.options.timeout) == (
        "unity-catalog",
        "https://uc/api/2.1/unity-catalog",
        "T",
        10.0,
    )


def test_a_table_that_fits_one_kind_needs_no_kind(tmp_path):
    _, team = load(tmp_path, '[targets.wh]\ndsn = "host=db1"\n')
    assert team.targets["wh"].kind == "postgresql"


def test_an_unknown_kind_names_the_table_and_lists_the_known_kinds(tmp_path):
    err = refused(tmp_path, "[targets.wh]\nkind = 'oracle'\ndsn = 'x'\n")
    assert err.message == f"{tmp_path / 'config.toml'}: targets.wh: unknown target kind 'oracle'"
    assert "known kinds: " in err.hint and "postgresql" in err.hint and "unity-catalog" in err.hint


@pytest.mark.parametrize(
    "text,problem,hint",
    [
        (
            "kind = 'unity-catalog'\ntoken_env = 'T'\n",
            "a unity-catalog target needs url",
            'url = "https://HOST/api/2.1/unity-catalog"',
        ),
        (
            "kind = 'postgresql'\ndsn = 'host=db1'\nurl = 'https://x'\n",
            "url is not a postgresql setting (it takes dsn, connect_timeout)",
            "dsn =",
        ),
        (
            "kind = 'postgresql'\ndns = 'host=db1'\n",
            "dns is not a postgresql setting (it takes dsn, connect_timeout)",
            "dsn =",
        ),
        (
            "kind = 'postgresql'\ndsn = 'host=db1'\nconnect_timeout = 0\n",
            "connect_timeout: Input should be greater than or equal to 1",
            "dsn =",
        ),
        (
            "kind = 'unity-catalog'\nurl = 'https://x'\nconnect_timeout = 30\n",
            "connect_timeout is not a unity-catalog setting (it takes url, token_env, timeout)",
            "token_env",
        ),
        ("kind = ['postgresql']\n", "unknown target kind ['postgresql']", "known kinds"),
        ("token_env = 'T'\n", "kind is missing and the settings fit no single kind", "known kinds"),
    ],
)
def test_a_bad_table_for_a_known_kind_says_what_is_wrong_and_shows_one_that_works(tmp_path, text, problem, hint):
    err = refused(tmp_path, "[targets.t1]\n" + text)
    assert err.message == f"{tmp_path / 'config.toml'}: targets.t1: {problem}"
    assert hint in err.hint


def settings(tmp_path, text: str = "") -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return Settings(db=f"sqlite:///{tmp_path / 's.db'}", config=path)


def test_a_bare_spec_opens_the_one_kind_that_recognises_it(tmp_path, monkeypatch):
    monkeypatch.setenv("UC_TOKEN", "t")
    opened = [
        open_target(spec, settings(tmp_path))
        for spec in (
            "host=db1 dbname=warehouse",
            "postgresql://db1/warehouse",
            "uc+https://uc.example/api/2.1/unity-catalog?token_env=UC_TOKEN",
        )
    ]
    assert [t.kind for t in opened] == ["postgresql", "postgresql", "unity-catalog"]
    for target in opened:
        target.close()


def test_a_named_target_opens_with_its_kinds_settings(tmp_path):
    target = open_target("wh", settings(tmp_path, '[targets.wh]\ndsn = "host=db1 dbname=w"\nconnect_timeout = 7\n'))
    assert (target.kind, target.display, target.connect_timeout) == ("postgresql", "wh", 7)


def test_an_unknown_name_shows_every_kinds_spec(tmp_path):
    with pytest.raises(NotFound) as err:
        open_target("warehouse", settings(tmp_path))
    assert "no target named 'warehouse'" in err.value.message
    assert "PostgreSQL: 'host=db1" in err.value.hint and "Unity Catalog: uc+https://" in err.value.hint
