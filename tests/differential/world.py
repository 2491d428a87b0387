"""Seeded random worlds for the differential test: the SQL that builds roles, schemas, relations and grants.

`build(seed, major)` is deterministic: the same seed and server major version give the same statements, and
`World.sql()` prints them so a human can replay a failing world in psql. The world is made of:

- the principal `emp_all`, roles it is a member of ("upper" groups, some nested, one maybe holding
  pg_read_all_data), its members (direct, nested through a team group, some NOINHERIT, some granted by a
  member holding ADMIN OPTION via SET ROLE), "side" groups that members and outsiders share, and outsiders;
  on 16+ membership grants also carry INHERIT FALSE / SET FALSE / ADMIN OPTION;
- 2-3 schemas with various owners and USAGE grants (the principal, other roles, PUBLIC, none);
- tables, partitioned tables whose partitions are granted separately, legacy INHERITS children, views,
  security_invoker views, materialized views, column grants, grant-option chains (the holder grants on,
  as itself), grants to PUBLIC, default privileges with tables created after them, and owners of every kind.

Every identifier is quoted; one role and one table have a space and a double quote in their names. Role
names start with `dw` (roles are cluster-wide: the prefix keeps them apart from other tests' roles) except
the principal. Relation names are unique across schemas, so a server message naming a relation is unambiguous.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

PRINCIPAL = "emp_all"
SUPERUSER = "postgres"
COLUMNS = ("id", "secret", "note")
ODD_ROLE = 'dw "odd" m'
ODD_TABLE = 'pay "roll" 2026'


def q(name: str) -> str:
    """A quoted identifier, always: names with spaces, quotes or capitals are data, not SQL."""
    return '"' + name.replace('"', '""') + '"'


def q_role(name: str) -> str:
    return "PUBLIC" if name == "PUBLIC" else q(name)


@dataclass
class World:
    seed: int
    major: int  # the server major version the SQL was generated for
    statements: list[str]
    roles: list[str]  # every role the world creates, the principal included
    principal: str = PRINCIPAL
    name: str = ""  # a hand-written world (tests/differential/repros.py) has a name, not a seed

    @property
    def label(self) -> str:
        return f"world {self.name!r}" if self.name else f"seed {self.seed}"

    def sql(self) -> str:
        head = [
            f"-- sevtool differential world: {self.label}, generated for PostgreSQL {self.major}",
            f"-- run as the superuser {SUPERUSER!r} in a fresh database, on a cluster where none of these roles exist yet",
        ]
        return "\n".join(head + [s + ";" for s in self.statements]) + "\n"

    def teardown_sql(self, existing: list[str]) -> list[str]:
        """Drops what the world made (`existing`: its roles that exist, for a world whose build stopped half-way); run in
        the world's database (roles are cluster-wide, objects are not)."""
        roles = [r for r in self.roles if r in existing]
        if not roles:
            return []
        # The world's objects go first, with every grant on them: DROP OWNED revokes what a role was granted but can
        # leave a grant it made (dw_up2=r*/dw_up1 after dw_up1's own grant option is gone), and that blocks DROP ROLE.
        schemas = sorted({m.group(1) for s in self.statements if (m := re.match(r'CREATE SCHEMA ("(?:[^"]|"")+")', s))})
        # One DROP OWNED per role: naming several roles at once fails with "could not find tuple for default ACL"
        # when one role's default privileges grant to another of them (both try to delete the same entry).
        return (
            [f"DROP SCHEMA IF EXISTS {schema} CASCADE" for schema in schemas]
            + [f"DROP OWNED BY {q(r)} CASCADE" for r in roles]
            + [f"DROP ROLE {', '.join(q(r) for r in roles)}"]
        )


@dataclass
class _Rel:
    schema: str
    name: str
    kind: str  # table, partitioned, view, matview
    columns: tuple[str, ...]
    owner: str = SUPERUSER

    @property
    def ref(self) -> str:
        return f"{q(self.schema)}.{q(self.name)}"


@dataclass
class _Schema:
    name: str
    owner: str  # SUPERUSER or a world role
    usage: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, seed: int, major: int):
        self.rng = random.Random(seed)
        # 16+ membership options draw from their own stream, so a seed builds the same structure on every version.
        self.opt_rng = random.Random(seed * 1_000_003 + 16)
        self.major = major
        self.out: list[str] = []
        self.roles: list[str] = []
        self.rels: list[_Rel] = []
        self.names = 0

    # --- helpers ------------------------------------------------------------------------------

    def emit(self, stmt: str) -> None:
        self.out.append(stmt)

    def as_role(self, role: str, *stmts: str) -> None:
        if role == SUPERUSER:
            self.out.extend(stmts)
            return
        self.out.append(f"SET ROLE {q(role)}")
        self.out.extend(stmts)
        self.out.append("RESET ROLE")

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, options: list):
        return self.rng.choice(options)

    def new_name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names:02d}"

    def create_role(self, name: str, *, login: bool, inherit: bool = True) -> str:
        self.emit(f"CREATE ROLE {q(name)} {'LOGIN' if login else 'NOLOGIN'}{'' if inherit else ' NOINHERIT'}")
        self.roles.append(name)
        return name

    def grant_role(
        self, role: str, member: str, *, admin: bool = False, by: str = SUPERUSER, options: bool = True
    ) -> None:
        opts = ["ADMIN OPTION"] if admin else []
        if self.major >= 16 and options:
            if self.opt_rng.random() < 0.2:
                opts.append("INHERIT FALSE")
            if self.opt_rng.random() < 0.15:
                opts.append("SET FALSE")
            if not admin and self.opt_rng.random() < 0.1:
                opts.append("ADMIN OPTION")
        stmt = f"GRANT {q_role(role)} TO {q(member)}" + (f" WITH {', '.join(opts)}" if opts else "")
        self.as_role(by, stmt)

    # --- the world ----------------------------------------------------------------------------

    def build(self) -> None:
        rng = self.rng
        self.create_role(PRINCIPAL, login=False, inherit=not self.chance(0.15))
        self.uppers = [
            self.create_role(f"dw_up{i}", login=False, inherit=not self.chance(0.2))
            for i in range(1, rng.randint(2, 3) + 1)
        ]
        n_direct, n_nested = rng.randint(3, 5), rng.randint(2, 3)
        direct_names = [f"dw_m{i}" for i in range(1, n_direct + 1)]
        direct_names[self.rng.randrange(n_direct)] = ODD_ROLE
        self.team = self.create_role("dw_team", login=False)
        self.direct = [
            self.create_role(n, login=self.chance(0.85), inherit=not self.chance(0.25)) for n in direct_names
        ]
        self.nested = [
            self.create_role(f"dw_n{i}", login=True, inherit=not self.chance(0.25)) for i in range(1, n_nested + 1)
        ]
        self.sides = [self.create_role(f"dw_side{i}", login=False) for i in range(1, rng.randint(1, 2) + 1)]
        self.outsiders = [
            self.create_role(f"dw_o{i}", login=self.chance(0.6), inherit=not self.chance(0.15))
            for i in range(1, rng.randint(3, 5) + 1)
        ]
        self.memberships()
        self.schemas = [self.schema(f"dw_s{i}") for i in range(1, rng.randint(2, 3) + 1)]
        for s in self.schemas:
            self.objects(s)
        if self.chance(0.3):  # database-wide default privileges: future tables only, nothing created after them
            who = self.pick(self.outsiders + self.uppers)
            self.emit(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(who)} GRANT SELECT ON TABLES TO {q_role(self.pick([PRINCIPAL, 'PUBLIC']))}"
            )
        for s in self.schemas:  # last: the grant-option holders needed USAGE only while they granted
            for grantee in s.usage:
                self.emit(f"GRANT USAGE ON SCHEMA {q(s.name)} TO {q_role(grantee)}")

    def memberships(self) -> None:
        rng = self.rng
        # The principal is a member of some upper groups; uppers nest (up_i member of up_j only for i < j: no cycles).
        for up in self.uppers:
            if up == self.uppers[0] or self.chance(0.5):
                if self.chance(0.25):  # a membership granted by a non-superuser holding ADMIN OPTION on the group
                    admin = self.pick(self.outsiders)
                    self.grant_role(up, admin, admin=True, options=False)
                    self.grant_role(up, PRINCIPAL, by=admin)
                else:
                    self.grant_role(up, PRINCIPAL)
        for i, low in enumerate(self.uppers):
            for high in self.uppers[i + 1 :]:
                if self.chance(0.4):
                    self.grant_role(high, low)
        # Members: direct ones and the team group; one direct member holds ADMIN OPTION and grants on as itself.
        self.grant_role(PRINCIPAL, self.team)
        for m in self.direct:
            self.grant_role(PRINCIPAL, m)
        for n in self.nested:
            if self.chance(0.8):
                self.grant_role(self.team, n)
            else:
                self.grant_role(self.pick(self.direct), n)
        lead = self.pick(self.direct)
        self.grant_role(PRINCIPAL, lead, admin=True, options=False)
        for member in rng.sample(self.nested + self.direct + self.outsiders[:1], 2):
            if member != lead:
                self.grant_role(PRINCIPAL, member, by=lead)
        # Side groups: shared by some members and some outsiders (USAGE and grants reach members through them).
        for side in self.sides:
            for m in rng.sample(self.direct + self.nested, 2) + rng.sample(self.outsiders, 1):
                self.grant_role(side, m)
        for o in self.outsiders[1:]:
            if self.chance(0.3):
                self.grant_role(self.pick(self.uppers), o)
        if self.chance(0.3):
            self.grant_role(self.pick(self.outsiders[:-1]), self.outsiders[-1])
        roll = rng.random()
        if roll < 0.2:
            self.grant_role("pg_read_all_data", self.pick(self.uppers))
        elif roll < 0.6:
            self.grant_role("pg_read_all_data", self.pick(self.outsiders))

    def schema(self, name: str) -> _Schema:
        owner = self.rng.choices(
            [SUPERUSER, self.pick(self.uppers), self.pick(self.outsiders), self.pick(self.direct)],
            weights=[0.4, 0.2, 0.25, 0.15],
        )[0]
        self.emit(f"CREATE SCHEMA {q(name)}" + ("" if owner == SUPERUSER else f" AUTHORIZATION {q(owner)}"))
        candidates = [
            (PRINCIPAL, 0.35),
            ("PUBLIC", 0.3),
            (self.pick(self.uppers), 0.2),
            (self.pick(self.sides), 0.35),
            (self.pick(self.outsiders), 0.3),
            (self.pick(self.direct), 0.15),
        ]
        usage = list(dict.fromkeys(g for g, p in candidates if self.chance(p)))
        return _Schema(name, owner, usage)

    def objects(self, s: _Schema) -> None:
        rng = self.rng
        default_at = rng.randint(0, 3) if self.chance(0.5) else None
        for i in range(rng.randint(4, 6)):
            if i == default_at:
                grantee = self.pick([PRINCIPAL, "PUBLIC", self.pick(self.uppers), self.pick(self.outsiders)])
                self.emit(
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(s.owner)} IN SCHEMA {q(s.name)} GRANT SELECT ON TABLES TO {q_role(grantee)}"
                )
            kind = rng.choices(
                ["table", "partitioned", "inherits", "view", "secinv", "matview"], weights=[40, 12, 10, 18, 10, 10]
            )[0]
            # A materialized view is filled when created, by the superuser through the bases' owners: over a view whose
            # owner cannot read its own base it would not build, so it reads tables only.
            bases = [
                r
                for r in self.rels
                if r.kind in (("table", "partitioned") if kind == "matview" else ("table", "partitioned", "view"))
            ]
            if kind in ("view", "secinv", "matview") and not bases:
                kind = "table"
            getattr(self, f"make_{kind}")(s, *([self.pick(bases)] if kind in ("view", "secinv", "matview") else []))

    def owner_for(self, s: _Schema, base_owner: str | None = None) -> str:
        options = [SUPERUSER, self.pick(self.uppers), self.pick(self.outsiders), self.pick(self.direct), s.owner]
        weights = [0.4, 0.15, 0.2, 0.1, 0.15]
        if base_owner:
            options.append(base_owner)
            weights.append(0.3)
        return self.rng.choices(options, weights=weights)[0]

    def table_name(self, prefix: str) -> str:
        if ODD_TABLE not in {r.name for r in self.rels} and self.chance(0.15):
            return ODD_TABLE
        return self.new_name(prefix)

    def new_rel(
        self, s: _Schema, name: str, kind: str, columns=COLUMNS, owner: str = SUPERUSER, created_by: str = SUPERUSER
    ) -> _Rel:
        rel = _Rel(s.name, name, kind, tuple(columns), owner if created_by == SUPERUSER else created_by)
        if owner != SUPERUSER and created_by == SUPERUSER:
            word = {"view": "VIEW", "matview": "MATERIALIZED VIEW"}.get(kind, "TABLE")
            self.emit(f"ALTER {word} {rel.ref} OWNER TO {q(owner)}")
        self.rels.append(rel)
        return rel

    def make_table(self, s: _Schema) -> None:
        name = self.table_name("t")
        creator = (
            s.owner if s.owner != SUPERUSER and self.chance(0.35) else SUPERUSER
        )  # meets the schema's default privileges
        self.as_role(creator, f"CREATE TABLE {q(s.name)}.{q(name)} (id int, secret text, note text)")
        rel = self.new_rel(
            s, name, "table", owner=self.owner_for(s) if creator == SUPERUSER else creator, created_by=creator
        )
        self.grants(rel)

    def make_partitioned(self, s: _Schema) -> None:
        name = self.new_name("p")
        self.emit(f"CREATE TABLE {q(s.name)}.{q(name)} (id int, secret text, note text) PARTITION BY RANGE (id)")
        parent = self.new_rel(s, name, "partitioned", owner=self.owner_for(s))
        self.grants(parent)
        for lo in (0, 100):
            part = f"{name}_{lo}"
            self.emit(
                f"CREATE TABLE {q(s.name)}.{q(part)} PARTITION OF {parent.ref} FOR VALUES FROM ({lo}) TO ({lo + 100})"
            )
            self.grants(self.new_rel(s, part, "table", owner=self.owner_for(s, parent.owner)))

    def make_inherits(self, s: _Schema) -> None:
        name = self.new_name("i")
        self.emit(f"CREATE TABLE {q(s.name)}.{q(name)} (id int, secret text, note text)")
        parent = self.new_rel(s, name, "table", owner=self.owner_for(s))
        self.grants(parent)
        child = f"{name}_child"
        self.emit(f"CREATE TABLE {q(s.name)}.{q(child)} (extra int) INHERITS ({parent.ref})")
        self.grants(self.new_rel(s, child, "table", columns=(*COLUMNS, "extra"), owner=self.owner_for(s, parent.owner)))

    def make_view(self, s: _Schema, base: _Rel, *, invoker: bool = False) -> None:
        name = self.new_name("sv" if invoker else "v")
        cols = ("id", self.pick(base.columns[1:]))
        opts = " WITH (security_invoker = true)" if invoker else ""
        self.emit(f"CREATE VIEW {q(s.name)}.{q(name)}{opts} AS SELECT {', '.join(q(c) for c in cols)} FROM {base.ref}")
        self.grants(self.new_rel(s, name, "view", columns=cols, owner=self.owner_for(s, base.owner)))

    def make_secinv(self, s: _Schema, base: _Rel) -> None:
        self.make_view(s, base, invoker=True)

    def make_matview(self, s: _Schema, base: _Rel) -> None:
        name = self.new_name("mv")
        cols = ("id", self.pick(base.columns[1:]))
        self.emit(
            f"CREATE MATERIALIZED VIEW {q(s.name)}.{q(name)} AS SELECT {', '.join(q(c) for c in cols)} FROM {base.ref}"
        )
        self.grants(self.new_rel(s, name, "matview", columns=cols, owner=self.owner_for(s, base.owner)))

    # --- grants ---------------------------------------------------------------------------------

    def grants(self, rel: _Rel) -> None:
        for _ in range(self.pick([0, 1, 1, 2, 2, 3])):
            how = self.rng.choices(
                ["principal", "public", "upper", "side", "outsider", "member", "chain"],
                weights=[22, 18, 14, 10, 10, 8, 18],
            )[0]
            cols = (self.pick(rel.columns),) if self.chance(0.25) else ()
            if how == "chain":
                self.chain(rel, cols)
                continue
            grantee = {
                "principal": PRINCIPAL,
                "public": "PUBLIC",
                "upper": self.pick(self.uppers),
                "side": self.pick(self.sides),
                "outsider": self.pick(self.outsiders),
                "member": self.pick(self.direct + self.nested),
            }[how]
            self.emit(_grant(rel, cols, grantee))

    def chain(self, rel: _Rel, cols: tuple[str, ...]) -> None:
        """A grant-option holder grants on, as itself; sometimes to a second holder who grants on again."""
        pool = self.outsiders + self.direct + self.uppers + self.sides
        holder = self.pick(pool)
        self.emit(_grant(rel, cols, holder, option=True))
        target = self.rng.choices([PRINCIPAL, "PUBLIC", "second"], weights=[50, 25, 25])[0]
        if target == "second":
            second = self.pick([r for r in pool if r != holder])
            self.with_usage(holder, rel, _grant(rel, cols, second, option=True))
            self.with_usage(second, rel, _grant(rel, cols, self.pick([PRINCIPAL, "PUBLIC"])))
        else:
            self.with_usage(holder, rel, _grant(rel, cols, target))

    def with_usage(self, role: str, rel: _Rel, stmt: str) -> None:
        """Run a GRANT as `role`, which must see the schema: USAGE only for the statement (schema USAGE comes last)."""
        owner = next(s.owner for s in self.schemas if s.name == rel.schema)
        if role == owner:
            self.as_role(role, stmt)
            return
        self.emit(f"GRANT USAGE ON SCHEMA {q(rel.schema)} TO {q(role)}")
        self.as_role(role, stmt)
        self.emit(f"REVOKE USAGE ON SCHEMA {q(rel.schema)} FROM {q(role)}")


def _grant(rel: _Rel, cols: tuple[str, ...], grantee: str, *, option: bool = False) -> str:
    columns = f" ({', '.join(q(c) for c in cols)})" if cols else ""
    return f"GRANT SELECT{columns} ON TABLE {rel.ref} TO {q_role(grantee)}{' WITH GRANT OPTION' if option else ''}"


def build(seed: int, major: int) -> World:
    """The world for this seed, as SQL for a server of this major version (15, 16, 17, 18 ...)."""
    b = _Builder(seed, major)
    b.build()
    return World(seed=seed, major=major, statements=b.out, roles=b.roles)
