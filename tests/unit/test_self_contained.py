"""The suite reads nothing outside the checkout: a fresh clone on anyone's machine must pass."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_contract_the_fake_follows_is_in_the_checkout():
    from fakes.uc_server import CONTRACT

    assert CONTRACT.is_file()
    assert ROOT in CONTRACT.resolve().parents


def test_no_code_or_test_names_a_path_outside_the_checkout():
    # Absolute paths of this team's workspace, or a climb out of the checkout to a sibling folder.
    outside = re.compile(r"""["'](/work/|/root/|/home/)|parents\[[3-9]\]|["']\.\./(shared|\.library)""")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for folder in ("sevtool", "tests")
        for path in (ROOT / folder).rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if outside.search(line) and path.name != "test_self_contained.py"
    ]
    assert not offenders, "\n".join(offenders)
