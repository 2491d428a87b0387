"""Minimal hand-written worlds, one per cause of disagreement the random seeds found, judged exactly like a seed.

Each is the smallest SQL that shows one cause; `python tests/perf/differential.py` finds them in bulk, these name
them. The server decides every answer (tests/differential/oracle.py); the comments say what it decides and why,
for the reader, not for the test.
"""

from __future__ import annotations

from dataclasses import dataclass

from differential.world import World

_BASE = [
    'CREATE ROLE "emp_all" NOLOGIN',
    'CREATE ROLE "dw_m" LOGIN',  # a member of the principal
    'CREATE ROLE "dw_o" LOGIN',  # an outsider
    'GRANT "emp_all" TO "dw_m"',
    'CREATE SCHEMA "dw_s"',
    'GRANT USAGE ON SCHEMA "dw_s" TO PUBLIC',
    'CREATE TABLE "dw_s"."t" (id int, secret text)',
]
_BASE_ROLES = ["emp_all", "dw_m", "dw_o"]


@dataclass(frozen=True)
class Repro:
    name: str
    why: str
    roles: tuple[str, ...]
    statements: tuple[str, ...]
    min_major: int = 15

    def world(self, major: int) -> World:
        return World(seed=-1, major=major, statements=list(self.statements), roles=list(self.roles), name=self.name)


def _repro(name: str, why: str, extra_roles: list[str], statements: list[str], *, min_major: int = 15) -> Repro:
    creates = [f'CREATE ROLE "{r}" NOLOGIN' for r in extra_roles]
    return Repro(
        name, why, tuple(_BASE_ROLES + extra_roles), tuple(_BASE[:3] + creates + _BASE[3:] + statements), min_major
    )


REPROS = [
    _repro(
        "view-owner-cannot-read-base",
        "a view whose owner cannot read its base: the read fails for everyone, yet the view is a finding",
        ["dw_owner"],
        [
            'CREATE VIEW "dw_s"."v" AS SELECT id FROM "dw_s"."t"',
            'ALTER VIEW "dw_s"."v" OWNER TO "dw_owner"',
            'GRANT SELECT ON TABLE "dw_s"."v" TO "emp_all"',
        ],
    ),
    _repro(
        "security-invoker-view",
        "a security_invoker view checks its base as the reader: members read it through emp_all's grant on the base",
        [],
        [
            'GRANT SELECT ON TABLE "dw_s"."t" TO "emp_all"',
            'CREATE VIEW "dw_s"."sv" WITH (security_invoker = true) AS SELECT id FROM "dw_s"."t"',
            'GRANT SELECT ON TABLE "dw_s"."sv" TO "dw_m"',
        ],
    ),
    _repro(
        "security-invoker-view-over-a-schema-without-usage",
        "the view resolved the base's name: members read the base's rows through the view without USAGE on its "
        "schema, so the base grant is not latent, and nothing is revoked",
        [],
        [
            'CREATE SCHEMA "dw_hidden"',
            'CREATE TABLE "dw_hidden"."base" (id int, secret text)',
            'GRANT SELECT ON TABLE "dw_hidden"."base" TO "emp_all"',
            'CREATE VIEW "dw_s"."sv" WITH (security_invoker = true) AS SELECT id FROM "dw_hidden"."base"',
            'GRANT SELECT ON TABLE "dw_s"."sv" TO "emp_all"',
        ],
    ),
    _repro(
        "view-over-a-security-invoker-view",
        "a plain view over a security_invoker view: the inner view's base is checked as the reader, so dw_m, granted "
        "the outer view directly, still reads it only through emp_all's grant on the base",
        [],
        [
            'GRANT SELECT ON TABLE "dw_s"."t" TO "emp_all"',
            'CREATE VIEW "dw_s"."sv" WITH (security_invoker = true) AS SELECT id FROM "dw_s"."t"',
            'CREATE VIEW "dw_s"."v" AS SELECT id FROM "dw_s"."sv"',
            'GRANT SELECT ON TABLE "dw_s"."v" TO "dw_m"',
            'GRANT SELECT ON TABLE "dw_s"."v" TO "emp_all"',
        ],
    ),
    _repro(
        "inherits-child-through-its-parent",
        "an INHERITS child is its own relation: reading the parent returns the child's rows without any privilege on "
        "the child, but nobody can SELECT from the child (a partition is treated the same way)",
        [],
        [
            'CREATE TABLE "dw_s"."child" (extra int) INHERITS ("dw_s"."t")',
            'GRANT SELECT ON TABLE "dw_s"."t" TO "emp_all"',
        ],
    ),
    _repro(
        "view-owned-by-a-member",
        "the view's owner reads the base only through emp_all: the owner reads the view now, not without emp_all; "
        "revoking the base grant breaks the view for the outsider it was granted to (collateral)",
        [],
        [
            'GRANT SELECT ON TABLE "dw_s"."t" TO "emp_all"',
            'CREATE VIEW "dw_s"."v" AS SELECT id FROM "dw_s"."t"',
            'ALTER VIEW "dw_s"."v" OWNER TO "dw_m"',
            'GRANT SELECT ON TABLE "dw_s"."v" TO "dw_o"',
        ],
    ),
    _repro(
        "grant-option-holder-without-usage",
        "the holder's grant must be revoked as the holder, who cannot name the table without USAGE on its schema "
        "(apply and undo both fail with 'permission denied for schema')",
        ["dw_holder"],
        [
            'REVOKE USAGE ON SCHEMA "dw_s" FROM PUBLIC',
            'GRANT USAGE ON SCHEMA "dw_s" TO "emp_all"',
            'GRANT SELECT ON TABLE "dw_s"."t" TO "dw_holder" WITH GRANT OPTION',
            'GRANT USAGE ON SCHEMA "dw_s" TO "dw_holder"',
            'SET ROLE "dw_holder"',
            'GRANT SELECT ON TABLE "dw_s"."t" TO "emp_all"',
            "RESET ROLE",
            'REVOKE USAGE ON SCHEMA "dw_s" FROM "dw_holder"',
        ],
    ),
    _repro(
        "undo-regrants-as-a-holder-without-usage",
        "undo keeps ACL order by re-granting every item after the revoked one, each as its grantor: the untouched "
        "grant dw_holder made to dw_o is re-granted as dw_holder, who cannot name the table without USAGE, and the "
        "failure takes the whole restore batch with it",
        ["dw_holder"],
        [
            'REVOKE USAGE ON SCHEMA "dw_s" FROM PUBLIC',
            'GRANT USAGE ON SCHEMA "dw_s" TO "emp_all"',
            'GRANT SELECT ON TABLE "dw_s"."t" TO "emp_all"',
            'GRANT SELECT ON TABLE "dw_s"."t" TO "dw_holder" WITH GRANT OPTION',
            'GRANT USAGE ON SCHEMA "dw_s" TO "dw_holder"',
            'SET ROLE "dw_holder"',
            'GRANT SELECT ON TABLE "dw_s"."t" TO "dw_o"',
            "RESET ROLE",
            'REVOKE USAGE ON SCHEMA "dw_s" FROM "dw_holder"',
        ],
    ),
    _repro(
        "undo-of-a-grant-option-chain",
        "owner -> dw_a (WITH GRANT OPTION) -> dw_b (WITH GRANT OPTION) -> PUBLIC, between the owner's own PUBLIC and "
        "emp_all grants: undo re-grants the chain out of order and the server refuses ('permission denied for table')",
        ["dw_a", "dw_b"],
        [
            'GRANT SELECT ON TABLE "dw_s"."t" TO PUBLIC',
            'GRANT SELECT ON TABLE "dw_s"."t" TO "dw_a" WITH GRANT OPTION',
            'SET ROLE "dw_a"',
            'GRANT SELECT ON TABLE "dw_s"."t" TO "dw_b" WITH GRANT OPTION',
            "RESET ROLE",
            'SET ROLE "dw_b"',
            'GRANT SELECT ON TABLE "dw_s"."t" TO PUBLIC',
            "RESET ROLE",
            'GRANT SELECT ON TABLE "dw_s"."t" TO "emp_all"',
        ],
    ),
    _repro(
        "membership-granted-by-a-non-superuser",
        "16+ keeps the grantor of a membership: a superuser's REVOKE without GRANTED BY leaves dw_admin's grant",
        ["dw_up", "dw_admin"],
        [
            'GRANT "dw_up" TO "dw_admin" WITH ADMIN OPTION',
            'SET ROLE "dw_admin"',
            'GRANT "dw_up" TO "emp_all"',
            "RESET ROLE",
            'GRANT SELECT ON TABLE "dw_s"."t" TO "dw_up"',
        ],
    ),
    _repro(
        "membership-options-on-undo",
        "16+: emp_all's membership in dw_up is INHERIT FALSE (members reach it by SET ROLE); undo must restore the "
        "option, not a plain GRANT that lets emp_all inherit dw_up",
        ["dw_up"],
        ['GRANT "dw_up" TO "emp_all" WITH INHERIT FALSE', 'GRANT SELECT ON TABLE "dw_s"."t" TO "dw_up"'],
        min_major=16,
    ),
    _repro(
        "two-public-grants-collateral",
        "the owner and a grant-option holder both granted the table to PUBLIC: neither revoke alone takes it from the "
        "outsider, both together do, and the pair's collateral must say so",
        ["dw_holder"],
        [
            'GRANT SELECT ON TABLE "dw_s"."t" TO "dw_holder" WITH GRANT OPTION',
            'SET ROLE "dw_holder"',
            'GRANT SELECT ON TABLE "dw_s"."t" TO PUBLIC',
            "RESET ROLE",
            'GRANT SELECT ON TABLE "dw_s"."t" TO PUBLIC',
        ],
    ),
    _repro(
        "public-grant-collateral",
        "revoking a PUBLIC grant takes the table from the outsider too: an action must list that collateral",
        [],
        ['GRANT SELECT ON TABLE "dw_s"."t" TO PUBLIC'],
    ),
]
