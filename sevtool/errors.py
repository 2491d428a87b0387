"""Every error sevtool raises on purpose, in one place (httpx style).

    SevtoolError                 base; carries the process exit code
    ├── UsageError               bad input from the user (exit 2): invalid SEV, bad --at, bad config
    │   ├── InvalidTime
    │   ├── ConfigError          malformed TOML config or playbook (names file, line, field)
    │   └── IllegalTransition    status change the state machine does not allow
    ├── NotFound                 unknown incident id, target name, action (exit 1)
    ├── StoreError               the store cannot be opened or written (exit 1)
    │   └── LockHeld             another process holds the incident lock (apply, watch)
    └── TargetError              a data platform failed (exit 1)
        ├── TargetUnreachable    could not connect within the time limit
        └── TargetRejected       the platform refused a statement or request

Messages say what failed, on which object, and what to do next.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    EXPOSED = 3


class SevtoolError(Exception):
    exit_code: ExitCode = ExitCode.ERROR
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def as_dict(self) -> dict:
        out = {"error": self.kind, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class UsageError(SevtoolError):
    exit_code = ExitCode.USAGE
    kind = "usage"


class InvalidTime(UsageError):
    kind = "invalid_time"


class ConfigError(UsageError):
    kind = "config"


class IllegalTransition(UsageError):
    kind = "illegal_transition"


class NotFound(SevtoolError):
    kind = "not_found"


class StoreError(SevtoolError):
    kind = "store"


class LockHeld(StoreError):
    kind = "lock_held"


class TargetError(SevtoolError):
    kind = "target"


class TargetUnreachable(TargetError):
    kind = "target_unreachable"


class TargetRejected(TargetError):
    kind = "target_rejected"
