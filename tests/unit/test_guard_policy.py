"""Guard policies: the team config's [[policy]] tables, their errors (file:line: problem), exceptions and evaluation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sevtool.core.exposure import AccessPath, Finding
from sevtool.core.guard import Policy, PolicyException, evaluate
from sevtool.errors import ConfigError
from sevtool.settings import load_team_config

TARGET = '[targets.warehouse]\nkind = "postgresql"\ndsn = "host=db1 dbname=warehouse"\n\n'
GOOD = """[[policy]]
name = "no-broad-sensitive"
target = "warehouse"
principals = ["all_employees", "public"]
min_dss = 3
sev = 2
playbook = "data-exposure"

[[policy.exception]]
objects = ["ml_features.*"]
owner = "ml-platform"
reason = "features are pseudonymised; re-reviewed monthly"
expires = 2026-07-01
"""


def load(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_team_config(path), path


def test_a_policy_and_its_exception_load(tmp_path):
    config, _ = load(tmp_path, TARGET + GOOD)
    [policy] = config.policy
    assert (policy.name, policy.target, policy.principals, policy.min_dss, policy.sev) == (
        "no-broad-sensitive",
        "warehouse",
        ["all_employees", "PUBLIC"],
        3,
        2,
    )
    [exception] = policy.exception
    assert exception.expires_at == datetime(2026, 7, 1, tzinfo=UTC) and exception.owner == "ml-platform"


@pytest.mark.parametrize(
    ("edit", "line", "problem"),
    [
        (
            lambda t: t.replace('target = "warehouse"', 'target = "lakehouse"'),
            3,
            "policy.0.target: no target named 'lakehouse' in [targets] (known: warehouse)",
        ),
        (
            lambda t: t.replace('principals = ["all_employees", "public"]', "principals = []"),
            4,
            "policy.0.principals: List should have at least 1 item",
        ),
        (
            lambda t: t.replace("min_dss = 3", "min_dss = 5"),
            5,
            "policy.0.min_dss: Input should be less than or equal to 4",
        ),
        (lambda t: t.replace("sev = 2", "sev = 9"), 6, "policy.0.sev: Input should be less than or equal to 5"),
        (
            lambda t: t.replace('principals = ["all_employees", "public"]\n', ""),
            1,
            "policy.0.principals: Field required",
        ),
        (
            lambda t: t + t.split("\n[[policy.exception]]")[0],
            15,
            "policy.1.name: 'no-broad-sensitive' is already the name of policy [0]",
        ),
        (lambda t: t.replace('owner = "ml-platform"\n', ""), 9, "policy.0.exception.0.owner: Field required"),
        (lambda t: t.replace("expires = 2026-07-01", 'expires = "soon"'), 13, "policy.0.exception.0.expires"),
    ],
)
def test_bad_policies_are_reported_at_their_line(tmp_path, edit, line, problem):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, TARGET + edit(GOOD))
    path = tmp_path / "config.toml"
    assert err.value.message.startswith(f"{path}:{line + TARGET.count(chr(10))}: {problem}"), err.value.message


def finding(fqn: str, principal: str = "all_employees", dss: int | None = 4) -> Finding:
    schema, name = fqn.split(".")
    return Finding(
        object_kind="table",
        schema_name=schema,
        object_name=name,
        principal=principal,
        path=AccessPath.DIRECT,
        grantee=principal,
        dss=dss,
    )


def policy_with(*exceptions: PolicyException) -> Policy:
    return Policy(name="p", target="warehouse", principals=["all_employees", "PUBLIC"], exception=list(exceptions))


def test_a_live_exception_exempts_what_it_covers_and_an_expired_one_does_not():
    exception = PolicyException(
        objects=["ml_features.*"],
        principals=["all_employees"],
        owner="ml",
        reason="pseudonymised",
        expires=datetime(2026, 7, 1, 12, tzinfo=UTC),
    )
    findings = [finding("ml_features.a"), finding("ml_features.b", principal="PUBLIC"), finding("hr.salaries")]
    before = evaluate(policy_with(exception), findings, datetime(2026, 7, 1, 11, 59, tzinfo=UTC))
    assert (
        before.state == "violated"
        and before.exempted == 1
        and {f.object_fqn for f in before.findings} == {"ml_features.b", "hr.salaries"}
    )
    assert before.expired == [] and before.expiring == [exception]

    after = evaluate(policy_with(exception), findings, datetime(2026, 7, 1, 12, tzinfo=UTC))
    assert after.exempted == 0 and after.objects == 3 and after.expired == [exception], (
        "an expired exception is a violation again"
    )

    only_exempt = evaluate(policy_with(exception), [findings[0]], datetime(2026, 6, 1, tzinfo=UTC))
    assert only_exempt.state == "holds" and only_exempt.exempted == 1


def test_a_bare_date_expires_at_the_start_of_that_day():
    exception = PolicyException(objects=["*"], owner="o", reason="r", expires=datetime(2026, 7, 1).date())
    assert not exception.expired(datetime(2026, 6, 30, 23, 59, tzinfo=UTC))
    assert exception.expired(datetime(2026, 7, 1, tzinfo=UTC))
