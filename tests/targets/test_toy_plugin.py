"""A target kind added through the entry point alone: a toy in-memory target package, installed by writing
it and its dist-info (METADATA, entry_points.txt) into a directory on PYTHONPATH, no file of sevtool edited.

The shared contract suite (the same test functions, in a fresh interpreter) finds it and passes; a toy
whose apply reports success without removing access fails it. Settings, --target specs and the store's
view of its action kinds accept it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CONTRACT = Path(__file__).with_name("test_target_contract.py")
REPO = CONTRACT.parents[2]

PLUGIN = """
from pydantic import BaseModel, ConfigDict

from sevtool.targets.plugin import ActionKindSpec, Capabilities, Closes, SpecSyntax, TargetPlugin


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tables: dict[str, list[str]]          # "schema.table" -> who can read it


def from_config(name, config):
    from toy_target.target import ToyTarget
    return ToyTarget({fqn: set(who) for fqn, who in config.tables.items()}, name=name)


def from_spec(spec):
    from toy_target.target import ToyTarget
    return ToyTarget({}, name=spec)


PLUGIN = TargetPlugin(kind="toy", title="Toy", config=ToyConfig, from_config=from_config,
                      capabilities=Capabilities(live_probe=False), action_kinds=(ActionKindSpec("toy_revoke", Closes.OBJECT),),
                      config_example='kind = "toy"; tables = {"hr.pay" = ["staff"]}',
                      spec=SpecSyntax(lambda spec: spec.startswith("toy://"), from_spec, "toy://NAME"))
"""

TARGET = """
from sevtool.core.exposure import AccessPath, Finding
from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.errors import TargetError
from sevtool.targets.base import ScanResult

BROKEN = {broken}   # apply reports success and leaves the grant in place


class ToyTarget:
    kind = "toy"

    def __init__(self, grants, name="toy"):
        self.grants = grants
        self.display = name

    def scan(self, scope, classify):
        findings = [Finding(object_kind="table", schema_name=fqn.split(".")[0], object_name=fqn.split(".")[1], principal=p,
                            path=AccessPath.DIRECT, grantee=p) for fqn, who in sorted(self.grants.items()) for p in scope.principals if p in who]
        return ScanResult(findings=findings, objects_in_scope=len(self.grants), objects=dict.fromkeys(self.grants))

    def plan(self, findings, scope):
        return [Action(seq=n, kind="toy_revoke", schema_name=f.schema_name, object_name=f.object_name, grantee=f.grantee,
                       sql=f"revoke {{f.object_fqn}} from {{f.grantee}}", prior_state="granted") for n, f in enumerate(findings, 1)]

    def apply(self, actions, on_batch, *, batch_size=None):
        size = batch_size or 100
        for start in range(0, len(actions), size):
            batch = []
            for a in actions[start:start + size]:
                who = self.grants[a.object_fqn]
                if a.grantee not in who:
                    batch.append(ActionResult(a.seq, ActionStatus.SKIPPED))
                    continue
                if not BROKEN:
                    who.discard(a.grantee)
                batch.append(ActionResult(a.seq, ActionStatus.APPLIED))
            on_batch(batch)

    def undo(self, actions, on_batch):
        for a in actions:
            self.grants[a.object_fqn].add(a.grantee)
        on_batch([ActionResult(a.seq, ActionStatus.UNDONE) for a in actions])

    def probe(self, role, objects):
        raise TargetError("the toy cannot probe live")

    def close(self):
        pass
"""

WORLD = """
from types import SimpleNamespace

from sevtool.core.exposure import Scope
from toy_target.target import ToyTarget


def world(request):
    grants = {"hr.salaries": {"staff", "hr"}, "hr.reviews": {"staff"}, "ops.runbooks": {"oncall"}}
    target = ToyTarget(grants)
    request.addfinalizer(target.close)
    return SimpleNamespace(target=target, scope=Scope(target=target.display, principals=["staff"]),
                           exposed={"hr.salaries", "hr.reviews"}, unexposed={"ops.runbooks"},
                           snapshot=lambda: {fqn: sorted(who) for fqn, who in grants.items()})
"""


def install_toy(root: Path, *, broken: bool) -> dict[str, str]:
    """Write the toy package and its dist-info under `root`; return an environment that sees it."""
    package = root / "toy_target"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(PLUGIN)
    (package / "target.py").write_text(TARGET.format(broken=broken))
    (package / "world.py").write_text(WORLD)
    info = root / "toy_target-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-target\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[sevtool.targets]\ntoy = toy_target.plugin:PLUGIN\n\n[sevtool.contract_worlds]\ntoy = toy_target.world:world\n"
    )
    path = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def run_contract(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-q",
            str(CONTRACT),
            "-k",
            "toy",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_toy_target_added_through_its_entry_point_passes_the_contract_suite(tmp_path):
    result = run_contract(install_toy(tmp_path, broken=False))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout and "failed" not in result.stdout


def test_a_toy_whose_apply_leaves_access_in_place_fails_the_contract_suite(tmp_path):
    result = run_contract(install_toy(tmp_path, broken=True))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 2 passed" in result.stdout
    assert (
        "FAILED tests/targets/test_target_contract.py::test_plan_closes_it_apply_is_clean_again_is_a_no_op_and_undo_restores_exactly[toy]"
        in result.stdout
    )


def test_settings_specs_and_the_store_accept_the_toy_kind(tmp_path):
    (tmp_path / "site").mkdir()
    env = install_toy(tmp_path / "site", broken=False)
    good, typo = tmp_path / "good.toml", tmp_path / "typo.toml"
    good.write_text('[targets.play]\nkind = "toy"\ntables = {"hr.pay" = ["staff"]}\n')
    typo.write_text('[targets.play]\nkind = "toy"\ntabels = {}\n')
    code = textwrap.dedent(f"""
        from pathlib import Path

        from sevtool.errors import ConfigError
        from sevtool.settings import Settings, load_team_config
        from sevtool.targets.plugin import closes
        from sevtool.services.targets import open_target

        try:
            load_team_config(Path({str(typo)!r}))
        except ConfigError as exc:
            print(exc.message)
        settings = Settings(db="sqlite://", config={str(good)!r})
        play, spec = open_target("play", settings), open_target("toy://lab", settings)
        print(play.kind, play.display, play.grants, spec.display, closes("toy_revoke", "table"))
    """)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{typo}: targets.play: tabels is not a toy setting (it takes tables)",
        "toy play {'hr.pay': {'staff'}} toy://lab object",
    ]
