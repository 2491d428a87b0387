"""SQLModel tables. Times are UTC; SQLite hands them back naive, `as_utc` restores the zone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    and_,
)
from sqlmodel import Field, SQLModel

# Big tables get 64-bit ids; SQLite only auto-numbers an INTEGER PRIMARY KEY, so it keeps that there.
BIG_ID = BigInteger().with_variant(Integer, "sqlite")


def _ts(nullable: bool = True, index: bool = False):
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index))


class IncidentRow(SQLModel, table=True):
    __tablename__ = "incident"
    id: int | None = Field(default=None, primary_key=True)
    title: str
    sev: int
    status: str = "declared"
    commander: str | None = None
    scribe: str | None = None
    comms: str | None = None
    playbook: str | None = None
    exposure_started_at: datetime | None = _ts()
    detected_at: datetime | None = _ts()
    declared_at: datetime | None = _ts()
    contained_at: datetime | None = _ts()
    verifying_at: datetime | None = _ts()
    verified_at: datetime | None = _ts()
    resolved_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    created_at: datetime | None = _ts()


class SevChangeRow(SQLModel, table=True):
    __tablename__ = "sev_change"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    from_sev: int | None = None
    to_sev: int
    reason: str
    at: datetime | None = _ts()


class EventRow(SQLModel, table=True):
    """Append-only. `seq` is global, so one chain covers every incident in the store."""

    __tablename__ = "event"
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    incident_id: int | None = Field(default=None, index=True)
    at: datetime | None = _ts(nullable=False)
    recorded_at: datetime | None = _ts()
    kind: str
    actor: str
    summary: str = Field(sa_column=Column(Text, nullable=False))
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str
    hash: str


class ChainHeadRow(SQLModel, table=True):
    """One row. Writers UPDATE it first, which serialises appends on SQLite and PostgreSQL alike."""

    __tablename__ = "chain_head"
    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = "0" * 64


class ScopeRow(SQLModel, table=True):
    __tablename__ = "scope"
    __table_args__ = (UniqueConstraint("incident_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    version: int
    target: str  # target name or DSN with the password removed
    principals: list = Field(sa_column=Column(JSON, nullable=False))
    schemas: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    table_glob: str | None = None
    min_dss: int | None = None
    finding_count: int = 0
    object_count: int = 0
    created_at: datetime | None = _ts()


class FindingRow(SQLModel, table=True):
    __tablename__ = "finding"
    __table_args__ = (Index("ix_finding_scope", "scope_id"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    scope_id: int = Field(foreign_key="scope.id")
    object_kind: str
    schema_name: str
    object_name: str
    principal: str
    path: str
    privilege: str = "SELECT"
    grantee: str = ""
    grantor: str = ""
    column_name: str | None = None
    dss: int | None = None
    base_object: str | None = None
    # How access happens (`Finding.HOW_FIELDS` that are set: the route of roles, the securable ...); NULL when none is.
    detail: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class ActionRow(SQLModel, table=True):
    """The ledger: one row per action, written as `planned` before anything runs.

    Only status, message and updated_at change, twice per apply; the action itself (its SQL and prior state)
    is in ActionDetailRow, so those updates rewrite a row of ~150 bytes instead of ~600.
    """

    __tablename__ = "action"
    # The unique index serves every ledger query (a plan's rows by seq); no index on status, which changes for
    # every action twice per apply: keeping an index on it up to date would double the ledger's writes.
    __table_args__ = (UniqueConstraint("incident_id", "plan_version", "seq"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    incident_id: int = Field(foreign_key="incident.id")
    plan_version: int
    scope_version: int
    seq: int
    kind: str
    target: str
    object_fqn: str
    status: str = "planned"
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_at: datetime | None = _ts()


class ActionDetailRow(SQLModel, table=True):
    """An action as planned (kind, SQL, prior ACL, reason): written with its ActionRow, never changed."""

    __tablename__ = "action_detail"
    incident_id: int = Field(primary_key=True)
    plan_version: int = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    detail: dict = Field(sa_column=Column(JSON, nullable=False))  # the Action without its status and message


DETAIL_OF_ACTION = and_(
    ActionDetailRow.incident_id == ActionRow.incident_id,
    ActionDetailRow.plan_version == ActionRow.plan_version,
    ActionDetailRow.seq == ActionRow.seq,
)  # joins an action's ledger row to its detail


class CheckRow(SQLModel, table=True):
    __tablename__ = "check_run"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    number: int
    scope_version: int
    scheduled_at: datetime | None = _ts()
    ran_at: datetime | None = _ts()
    duration_ms: int = 0
    clean: bool = False
    exposed_objects: int = 0
    findings: int = 0
    regressions: int = 0
    probe: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class CheckFindingRow(SQLModel, table=True):
    """What remained readable at one check, so the next check can tell what came back."""

    __tablename__ = "check_finding"
    __table_args__ = (Index("ix_check_finding_check", "check_id"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    check_id: int = Field(foreign_key="check_run.id")
    detail: dict = Field(sa_column=Column(JSON, nullable=False))


class RegressionRow(SQLModel, table=True):
    __tablename__ = "regression"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    check_id: int = Field(foreign_key="check_run.id")
    object_fqn: str
    principal: str
    path: str
    cause: str = Field(sa_column=Column(Text, nullable=False))
    first_seen_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    closed_by: str | None = None


class ScheduleSlotRow(SQLModel, table=True):
    """One planned re-check. Claimed with a conditional UPDATE so two watchers never run the same one."""

    __tablename__ = "schedule_slot"
    __table_args__ = (UniqueConstraint("incident_id", "round", "idx"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    round: int = 1  # a regression starts a new round of the schedule
    idx: int
    offset: str
    due_at: datetime | None = _ts()
    status: str = "pending"  # pending, running, done
    claimed_by: str | None = None
    claimed_at: datetime | None = _ts()
    ran_at: datetime | None = _ts()
    check_id: int | None = None
    delay_seconds: int | None = None


class LockRow(SQLModel, table=True):
    """Per-incident named locks (apply, watch) held across processes and stores."""

    __tablename__ = "incident_lock"
    incident_id: int = Field(primary_key=True)
    name: str = Field(primary_key=True)
    holder: str
    acquired_at: datetime | None = _ts()
    heartbeat_at: datetime | None = _ts()


class ActionItemRow(SQLModel, table=True):
    __tablename__ = "action_item"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    title: str
    owner: str | None = None
    type: str = "prevent"  # prevent, mitigate, detect, process
    due: str | None = None
    status: str = "open"
    created_at: datetime | None = _ts()


class OutboxRow(SQLModel, table=True):
    """Webhook deliveries: written in the same transaction as the event, delivered later, retried with backoff."""

    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, index=True)
    event_seq: int
    endpoint: str
    format: str = "json"
    payload: dict = Field(sa_column=Column(JSON, nullable=False))
    status: str = "pending"  # pending, delivered, dead
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()
    last_error: str | None = None
    delivered_at: datetime | None = _ts()


class WorkLeaseRow(SQLModel, table=True):
    """Recurring work shared by several workers (guard: one row per policy and target; watch --all: one per incident).

    A worker claims a due row with `SELECT ... FOR UPDATE SKIP LOCKED` and holds it until `lease_until`, renewing
    while it works; finishing moves `due_at` to the next interval. A killed worker's row is claimable once its lease ends.
    """

    __tablename__ = "work_lease"
    kind: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    due_at: datetime | None = _ts(nullable=False)
    holder: str | None = None
    lease_until: datetime | None = _ts()


class GuardStateRow(SQLModel, table=True):
    """Where each (policy, target) stands: its last run, the incident it opened, the digest broadening is judged from."""

    __tablename__ = "guard_state"
    key: str = Field(primary_key=True)  # policy@target
    policy: str
    target: str
    incident_id: int | None = None
    state: str = "never"  # holds, violated, error
    last_run_at: datetime | None = _ts()
    objects: int = 0
    findings: int = 0
    exempted: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    digest: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class GuardRunRow(SQLModel, table=True):
    """One run of one policy: which interval slot it served and who ran it (so a slot run twice would show)."""

    __tablename__ = "guard_run"
    __table_args__ = (Index("ix_guard_run_key", "key", "slot"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str
    slot: datetime | None = _ts()
    holder: str
    ran_at: datetime | None = _ts()
    state: str
    objects: int = 0
    incident_id: int | None = None


class StatsSnapshotRow(SQLModel, table=True):
    """The target's table statistics for every in-scope object at one moment (after a scan, apply or check).

    One row per snapshot, the counters packed (zlib-compressed JSON, see store/table_stats.py): a check of 45,000
    tables writes one row, not 45,000.
    """

    __tablename__ = "stats_snapshot"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    phase: str  # scan | apply | check
    taken_at: datetime | None = _ts(nullable=False)
    stats_reset: datetime | None = _ts()
    objects: int = 0
    counters: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AccessExceptionRow(SQLModel, table=True):
    """A just-in-time access exception: who may read what, why, until when, and how it ended.

    `grants` are exactly what the target added, taken back when it ends.
    """

    __tablename__ = "access_exception"
    __table_args__ = (UniqueConstraint("incident_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    number: int
    target: str
    role: str
    objects: list = Field(sa_column=Column(JSON, nullable=False))
    why: str = Field(sa_column=Column(Text, nullable=False))
    approver: str | None = None
    requested_by: str
    granted_at: datetime | None = _ts(nullable=False)
    until: datetime | None = _ts(nullable=False, index=True)
    grants: list = Field(sa_column=Column(JSON, nullable=False))
    held_before: dict = Field(sa_column=Column(JSON, nullable=False))
    ended_at: datetime | None = _ts()
    ending: str | None = None
    ended_by: str | None = None
