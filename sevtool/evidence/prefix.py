"""Parse stderr log lines by the server's `log_line_prefix` (e.g. '%m [%p] %q%u@%d '), as the server wrote them.

After the prefix comes 'SEVERITY:  message'. `%q` ends the prefix for processes that are not sessions (the
checkpointer, the postmaster): what follows it is optional. Escapes that carry no field we need still have
to be matched, so each one gets a pattern for what PostgreSQL writes there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sevtool.errors import UsageError

_TIME_MS = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [A-Za-z0-9+:-]+"
_TIME_S = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [A-Za-z0-9+:-]+"
# escape -> (group name or None, pattern). Names we keep: time, epoch, user, database, pid, session.
_ESCAPES = {
    "m": ("time", _TIME_MS),
    "t": ("time", _TIME_S),
    "n": ("epoch", r"\d+(?:\.\d+)?"),
    "u": ("user", r"[^\s@]*?|\[unknown\]"),
    "d": ("database", r"[^\s@]*?|\[unknown\]"),
    "p": ("pid", r"\d+"),
    "c": ("session", r"[0-9a-f]+\.[0-9a-f]+"),
    "a": (None, r".*?"),
    "r": (None, r"\S*"),
    "h": (None, r"\S*"),
    "b": (None, r".*?"),
    "P": (None, r"\d*"),
    "i": (None, r".*?"),
    "e": (None, r"[0-9A-Z]{5}"),
    "l": (None, r"\d+"),
    "s": (None, _TIME_S),
    "v": (None, r"\S*"),
    "x": (None, r"\d+"),
    "Q": (None, r"-?\d+"),
}
_SEVERITY = (
    r"(?P<severity>DEBUG[1-5]?|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC|STATEMENT|DETAIL|HINT|CONTEXT|QUERY|LOCATION)"
)


@dataclass(frozen=True, slots=True)
class PrefixedLine:
    time: str
    epoch: str
    user: str
    database: str
    pid: str
    session: str
    severity: str
    message: str


class PrefixParser:
    def __init__(self, line_prefix: str):
        session_part, _, rest = _split_q(line_prefix)
        seen: set[str] = set()
        head = _translate(session_part, seen)
        tail = _translate(rest, seen) if rest is not None else ""
        if not seen & {"time", "epoch"}:
            raise UsageError(
                f"--line-prefix {line_prefix!r} has no time (%m, %t or %n)",
                hint="evidence needs a time on every line; use csvlog or jsonlog, or a prefix with %m",
            )
        body = head + (f"(?:{tail})?" if rest is not None else "")
        self.pattern = re.compile(f"^{body}{_SEVERITY}:  (?P<message>.*)$", re.DOTALL)
        self.fields = seen

    def parse(self, line: str) -> PrefixedLine | None:
        match = self.pattern.match(line)
        if match is None:
            return None
        get = match.groupdict()
        return PrefixedLine(
            get.get("time") or "",
            get.get("epoch") or "",
            _known(get.get("user")),
            _known(get.get("database")),
            get.get("pid") or "",
            get.get("session") or "",
            get["severity"],
            get["message"],
        )


def _known(value: str | None) -> str:
    return "" if value in (None, "[unknown]") else value


def _split_q(prefix: str) -> tuple[str, str, str | None]:
    i = 0
    while i < len(prefix):
        if prefix[i] == "%" and i + 1 < len(prefix):
            if prefix[i + 1] == "q":
                return prefix[:i], "%q", prefix[i + 2 :]
            i += 2
            continue
        i += 1
    return prefix, "", None


def _translate(prefix: str, seen: set[str]) -> str:
    out, i = [], 0
    while i < len(prefix):
        ch = prefix[i]
        if ch != "%" or i + 1 >= len(prefix):
            out.append(re.escape(ch))
            i += 1
            continue
        i += 1
        # A padding width (%-10u, %10p) pads with spaces: allow any run of them around the value.
        width = re.match(r"-?\d+", prefix[i:])
        if width:
            i += len(width.group(0))
        esc = prefix[i]
        i += 1
        if esc == "%":
            out.append("%")
            continue
        if esc not in _ESCAPES:
            raise UsageError(
                f"--line-prefix: unknown escape %{esc}",
                hint="use the server's log_line_prefix as SHOW log_line_prefix prints it",
            )
        name, pattern = _ESCAPES[esc]
        if name and name not in seen:
            seen.add(name)
            group = f"(?P<{name}>{pattern})"
        else:
            group = f"(?:{pattern})"
        out.append(f" *{group} *" if width else group)
    return "".join(out)
