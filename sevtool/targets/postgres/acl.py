"""ACLs as data, and undo as a three-way merge of them.

An ACL is read from its catalog text (`relacl::text`, `attacl::text`, `defaclacl::text`) into
{(grantee, grantor): {privilege: with grant option}}. Undo never writes an ACL back whole; it compares three:

- the prior ACL the plan recorded (base),
- what the apply made of it (base with the planned REVOKEs replayed, CASCADE included), and
- the ACL now (someone may have granted or revoked since).

It puts back exactly what the apply removed and is missing now, as the grantor that held it, and leaves
everything else as it is now; every difference it leaves in place is drift, reported, never hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sevtool.core.exposure import PUBLIC
from sevtool.core.plan import Action
from sevtool.targets.postgres.plugin import ActionKind

LETTERS = {
    "r": "SELECT",
    "a": "INSERT",
    "w": "UPDATE",
    "d": "DELETE",
    "D": "TRUNCATE",
    "x": "REFERENCES",
    "t": "TRIGGER",
    "m": "MAINTAIN",
    "U": "USAGE",
    "C": "CREATE",
    "X": "EXECUTE",
    "T": "TEMPORARY",
    "c": "CONNECT",
}
LETTER_OF = {v: k for k, v in LETTERS.items()}

Key = tuple[str, str]  # (grantee, grantor); grantee PUBLIC for the empty name
Acl = dict[Key, dict[str, bool]]  # privilege -> held with grant option


def _name(text: str, i: int, stop: str) -> tuple[str, int]:
    """A role name as aclitemout writes it (double-quoted when it is not plain), and the index after it."""
    if i < len(text) and text[i] == '"':
        out, i = [], i + 1
        while i < len(text):
            if text[i] == '"':
                if i + 1 < len(text) and text[i + 1] == '"':
                    out.append('"')
                    i += 2
                    continue
                return "".join(out), i + 1
            out.append(text[i])
            i += 1
        raise ValueError(f"unterminated role name in ACL item {text!r}")
    end = text.index(stop, i) if stop in text[i:] else len(text)
    return text[i:end], end


def parse_item(text: str) -> tuple[str, str, dict[str, bool]]:
    grantee, i = _name(text, 0, "=")
    if text[i] != "=":
        raise ValueError(f"not an ACL item: {text!r}")
    slash = text.index("/", i)
    privs, letters = {}, text[i + 1 : slash]
    for n, letter in enumerate(letters):
        if letter != "*":
            privs[LETTERS[letter]] = n + 1 < len(letters) and letters[n + 1] == "*"
    grantor, _ = _name(text, slash + 1, "\0")
    return grantee or PUBLIC, grantor, privs


def _array_elements(text: str) -> list[str]:
    """Elements of a one-dimensional array literal ('{a,"b c"}'); quoted elements use backslash escapes."""
    body, out, i = text.strip()[1:-1], [], 0
    while i < len(body):
        if body[i] == '"':
            chars, i = [], i + 1
            while body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            out.append("".join(chars))
            i += 2  # closing quote and comma
        else:
            end = body.find(",", i)
            end = len(body) if end < 0 else end
            out.append(body[i:end])
            i = end + 1
    return out


def parse_acl(text: str | None) -> Acl:
    """{(grantee, grantor): {privilege: grantable}}; NULL here means no items (callers pass acldefault explicitly)."""
    acl: Acl = {}
    for element in _array_elements(text) if text else []:
        grantee, grantor, privs = parse_item(element)
        acl.setdefault((grantee, grantor), {}).update(privs)
    return acl


def item_text(key: Key, privs: dict[str, bool]) -> str:
    """One item as a reader knows it from psql: grantee=r*w/grantor."""
    letters = "".join(LETTER_OF.get(p, "?") + ("*" if opt else "") for p, opt in privs.items())
    return f"{'' if key[0] == PUBLIC else key[0]}={letters}/{key[1]}"


def _copy(acl: Acl) -> Acl:
    return {k: dict(v) for k, v in acl.items()}


def _revoke(acl: Acl, key: Key, privs: Sequence[str], owner: str, *, option_only: bool = False) -> None:
    """REVOKE [GRANT OPTION FOR] privs ... CASCADE on one item, as the server does it (aclupdate + recursive_revoke)."""
    held = acl.get(key) or {}
    options_removed = [p for p in privs if held.get(p)]
    for p in privs:
        if p in held:
            if option_only:
                held[p] = False
            else:
                del held[p]
    if key in acl and not held:
        del acl[key]
    grantee = key[0]
    if grantee == owner or not options_removed:  # only an item that loses grant options cascades; the owner never does
        return
    # The grants the grantee made fall only where it holds the option from no one any more.
    lost = [p for p in options_removed if not any(v.get(p) for (g, _), v in acl.items() if g in (grantee, PUBLIC))]
    for dependent in [k for k, v in acl.items() if k[1] == grantee and any(p in v for p in lost)]:
        _revoke(acl, dependent, [p for p in lost if p in acl.get(dependent, {})], owner)


def replay_apply(prior: Acl, actions: list[Action], owner: str, renamed: dict[str, str] | None = None) -> Acl:
    """What the planned REVOKEs made of the prior ACL (CASCADE included); `renamed` maps a former owner to the owner."""
    after = _copy(prior)
    for a in actions:
        grantor = (renamed or {}).get(a.grantor, a.grantor)
        if (
            a.kind == ActionKind.REVOKE_GRANT_OPTION
        ):  # run as the owner: the holder's option from the owner goes, and what it granted
            _revoke(after, (grantor, owner), a.privileges, owner, option_only=True)
        else:
            _revoke(after, (a.grantee, grantor), a.privileges, owner)
    return after


def _new_owner(prior: Acl, old: str, new: str) -> Acl:
    """The prior ACL as ALTER ... OWNER TO rewrote it: the old owner's items become the new owner's."""
    out: Acl = {}
    for (grantee, grantor), privs in prior.items():
        key = (new if grantee == old else grantee, new if grantor == old else grantor)
        out.setdefault(key, {}).update(privs)
    return out


@dataclass(frozen=True)
class Grant:
    """One GRANT to run: privileges of one item, with or without grant option, as `grantor` (None: as the owner)."""

    grantee: str
    grantor: str | None
    privileges: tuple[str, ...]
    option: bool


@dataclass
class Merge:
    grants: list[Grant] = field(default_factory=list)
    expected: list[tuple[Key, str, bool]] = field(default_factory=list)  # items that must be present after undo
    drift: list[str] = field(default_factory=list)


def merge(
    prior: Acl, now: Acl, actions: list[Action], owner: str, can_act_as: Callable[[str], bool], prior_owner: str = ""
) -> Merge:
    """The GRANTs that put back what the apply removed, in an order where each grantor holds its option first.

    `prior_owner` is the owner when the plan was made: when the object changed owner since, the server has
    rewritten the old owner's items as the new owner's, and the merge compares them the same way.
    """
    result = Merge()
    renamed = {}
    if prior_owner and prior_owner != owner:
        prior, renamed = _new_owner(prior, prior_owner, owner), {prior_owner: owner}
        result.drift.append(
            f"the owner changed from {prior_owner} to {owner} after the plan: {prior_owner}'s grants are restored as {owner}'s"
        )
    after_apply = replay_apply(prior, actions, owner, renamed)
    wanted: dict[Key, dict[str, bool]] = {}
    for key, privs in prior.items():
        for p, opt in privs.items():
            left = after_apply.get(key, {}).get(p)
            if left is not None and (left or not opt):
                continue  # the apply did not take it
            held = now.get(key, {}).get(p)
            if held is not None and (held or not opt):
                result.drift.append(
                    f"{item_text(key, {p: opt})} is already back (re-granted since the apply, or by an earlier undo)"
                )
                continue
            wanted.setdefault(key, {})[p] = opt
    for key, privs in now.items():
        added = {
            p: o for p, o in privs.items() if after_apply.get(key, {}).get(p) != o and prior.get(key, {}).get(p) != o
        }
        if added:
            result.drift.append(f"{item_text(key, added)} was granted after the plan: left in place")
    for key, privs in after_apply.items():
        gone = {p: o for p, o in privs.items() if now.get(key, {}).get(p) is None}
        if gone:
            result.drift.append(f"{item_text(key, gone)} was revoked by someone else after the apply: left revoked")
    # Grant-option holders get their options back before the grants they made.
    options = {k: {p for p, o in v.items() if o} for k, v in now.items()}
    pending = sorted(wanted.items(), key=lambda kv: (kv[0][1] != owner, kv[0]))
    while pending:
        ready = [
            kv
            for kv in pending
            if kv[0][1] == owner
            or not can_act_as(kv[0][1])
            or set(kv[1]) <= {p for (g, _), held in options.items() if g in (kv[0][1], PUBLIC) for p in held}
        ]
        if not ready:
            ready = pending[:1]  # a grantor whose option is not coming back: try as it is, the server decides
        for key, privs in ready:
            pending.remove((key, privs))
            grantee, grantor = key
            acting = grantor if grantor == owner or can_act_as(grantor) else owner
            if acting != grantor:
                result.drift.append(
                    f"{item_text(key, privs)} restored as {item_text((grantee, owner), privs)}: "
                    f"this connection cannot act as {grantor} (SET ROLE {grantor} is not allowed)"
                )
            for option in (True, False):
                chosen = tuple(p for p, o in privs.items() if o == option)
                if chosen:
                    result.grants.append(Grant(grantee, None if acting == owner else acting, chosen, option))
                    result.expected += [((grantee, acting), p, option) for p in chosen]
            if any(privs.values()):
                options.setdefault((grantee, acting), set()).update(p for p, o in privs.items() if o)
    return result


def missing(now: Acl, expected: list[tuple[Key, str, bool]]) -> list[str]:
    """Expected items not in `now` (a read-back), as item text."""
    out = []
    for key, p, opt in expected:
        held = now.get(key, {}).get(p)
        if held is None or (opt and not held):
            out.append(item_text(key, {p: opt}))
    return out
