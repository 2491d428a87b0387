"""Rows of Databricks' system.access.audit as a JSON Lines export, with the documented columns, for evidence tests."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path


def row(
    at: datetime,
    who: str,
    action: str = "getTable",
    *,
    table: str | None = None,
    table_id: str | None = None,
    metastore: str = "ms-11111111-2222",
    status: int = 200,
    service: str = "unityCatalog",
    event: str | None = None,
) -> dict:
    """One exported row, with the documented columns (and the map exported as a JSON object)."""
    params = {"metastore_id": metastore, "workspace_id": "1234567890123456"}
    if table:
        params["full_name_arg"] = table
    if table_id:
        params |= {"table_id": table_id, "operation": "READ"}
    return {
        "account_id": "acc-1",
        "workspace_id": "1234567890123456",
        "version": "2.0",
        "event_time": at.isoformat(timespec="milliseconds"),
        "event_date": at.date().isoformat(),
        "source_ip_address": "10.0.0.1",
        "user_agent": "test",
        "session_id": "s1",
        "user_identity": {"email": who, "subjectName": None},
        "service_name": service,
        "action_name": action,
        "request_id": f"req-{event or at.timestamp()}-{who}",
        "request_params": params,
        "response": {"statusCode": status, "errorMessage": None, "result": None},
        "audit_level": "ACCOUNT_LEVEL",
        "event_id": event or f"ev-{at.timestamp()}-{who}-{action}",
    }


def heartbeats(start: datetime, end: datetime, step: timedelta = timedelta(minutes=20)) -> list[dict]:
    """Other audited activity (logins), which is what shows the export was being written at a time."""
    out, at = [], start
    while at <= end:
        out.append(row(at, "svc@corp.com", "login", service="accounts"))
        at += step
    return out


def write(path: Path, rows: list, *, gz: bool = False) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    data = "\n".join(lines) + "\n"
    if gz:
        path.write_bytes(gzip.compress(data.encode()))
    else:
        path.write_text(data)
    return path
