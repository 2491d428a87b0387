"""Core is pure domain code and the CLI starts without Textual: proven in a fresh interpreter."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module,forbidden",
    [
        ("sevtool.core", ["textual", "sqlmodel", "sqlalchemy", "httpx"]),
        ("sevtool.core.incident", ["textual", "sqlmodel", "sqlalchemy", "httpx"]),
        ("sevtool.core.timeline", ["textual", "sqlmodel", "sqlalchemy", "httpx"]),
        ("sevtool.core.severity", ["textual", "sqlmodel", "sqlalchemy", "httpx"]),
        ("sevtool.core.exposure", ["textual", "sqlmodel", "sqlalchemy", "httpx"]),
        ("sevtool.core.plan", ["textual", "sqlmodel", "sqlalchemy", "httpx"]),
        ("sevtool.cli.main", ["textual"]),
        ("sevtool.targets.postgres.plugin", ["psycopg", "httpx", "sqlalchemy"]),
        ("sevtool.targets.unity.plugin", ["psycopg", "httpx", "sqlalchemy"]),
    ],
)
def test_module_does_not_load(module, forbidden):
    code = f"import importlib, sys; importlib.import_module({module!r}); print(','.join(sorted(m for m in {forbidden!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"{module} loaded {out}"


def test_every_core_module_is_pure():
    import pkgutil

    import sevtool.core

    names = [f"sevtool.core.{m.name}" for m in pkgutil.iter_modules(sevtool.core.__path__)]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(','.join(m for m in ('textual', 'sqlmodel', 'sqlalchemy', 'httpx', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_cli_help_loads_no_heavy_dependency():
    """`sevtool --help` stays fast because commands import services, stores, drivers, pydantic and Textual only when they run."""
    heavy = ["pydantic", "sqlmodel", "sqlalchemy", "psycopg", "httpx", "textual"]
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from sevtool.cli.main import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0 and 'declare' in result.output, result.output\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"sevtool --help loaded {out}"


def test_reading_the_team_config_loads_no_target_driver():
    """Every command validates [targets.NAME] through every installed plug-in's declaration: drivers load only
    when a target is opened."""
    code = (
        "import sys\n"
        "from sevtool.targets.plugin import action_kinds, plugins\n"
        "assert {'postgresql', 'unity-catalog'} <= set(plugins()) and action_kinds()\n"
        "print(','.join(m for m in ('psycopg', 'httpx', 'sqlalchemy', 'textual') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"loading the target plug-ins loaded {out}"
