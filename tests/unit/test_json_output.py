"""`write_json` writes what `json.dumps(..., indent=2, ensure_ascii=False)` writes, whether or not a long list in it
is encoded item by item as it is written."""

import json

from pydantic import BaseModel

from sevtool.cli.output import streamed, to_jsonable, write_json
from sevtool.core.plan import Action, Collateral
from sevtool.services.revocation_plan import Plan as RevocationPlan

ITEMS = [
    {"name": f"t{n}", "note": 'quote " backslash \\ newline \n tab \t nul \x00 ümlaut ✓ 𝄞', "n": n, "ok": n % 2 == 0}
    | {"nested": {"route": ["a", "b"], "empty": [], "none": None, "map": {}}, "big": 2**70, "half": 0.5}
    for n in range(3)
]


def test_a_streamed_list_is_written_as_json_dumps_writes_the_whole(capsys):
    data = {"version": 3, "findings": streamed(ITEMS, dict), "empty": streamed([], dict), "after": {"x": [1, 2]}}
    write_json(data)
    expected = {"version": 3, "findings": ITEMS, "empty": [], "after": {"x": [1, 2]}}
    assert capsys.readouterr().out == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"


class Item(BaseModel):
    name: str
    n: int


class Plan(BaseModel):
    title: str
    actions: list[Item]
    notes: list[str]


def test_a_models_long_lists_are_written_as_json_dumps_writes_the_whole(capsys):
    plan = Plan(title="p ✓", actions=[Item(name=f"a{n}", n=n) for n in range(1500)], notes=["x"])
    write_json(plan)
    assert capsys.readouterr().out == json.dumps(plan.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def test_an_empty_or_short_document_is_unchanged(capsys):
    write_json({"a": [], "b": "c"})
    write_json([1, {"d": None}])
    assert (
        capsys.readouterr().out
        == json.dumps({"a": [], "b": "c"}, indent=2) + "\n" + json.dumps([1, {"d": None}], indent=2) + "\n"
    )


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
    plan = RevocationPlan(
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
