"""A plan's long list of actions is encoded by pydantic as it is written: the text must stay json's, byte for byte."""

from __future__ import annotations

import json

from sevtool.cli.output import to_jsonable, write_json
from sevtool.core.plan import Action, Collateral
from sevtool.services.revocation_plan import Plan


def test_a_long_plan_is_written_exactly_as_json_dumps_writes_it(capsys):
    actions = [
        Action(
            seq=n,
            kind="revoke_table",
            grantee="analyst",
            schema_name="sales",
            object_name=f"t_é_{n}",
            sql=f'REVOKE SELECT ON TABLE sales."t_é_{n}" FROM analyst',
            prior_columns={"c": "a=r/b"} if n % 2 else {},
            collateral=[Collateral(role="r", objects=["a", "b"])] if n % 3 == 0 else [],
        )
        for n in range(1, 1201)
    ]
    plan = Plan(
        incident_id=1,
        plan_version=2,
        scope_version=3,
        target="postgresql://x",
        actions=actions,
        counts={"planned": 1200},
        by_kind={"revoke_table": 1200},
        review=0,
        blast={"actions": 0, "roles": []},
        blast_actions=[{"seq": 3, "roles": ["r"]}],
        created=True,
    )
    write_json(plan)
    assert capsys.readouterr().out == json.dumps(to_jsonable(plan), indent=2, ensure_ascii=False) + "\n"
