"""Reading PostgreSQL server logs with pgaudit entries, many files at once: which files, in which format, and the
totals over them.

A reader yields one `AuditRecord` per pgaudit AUDIT line of the database asked for, and counts the rest. The
statement text and parameters of an AUDIT line (they can hold data values: `WHERE ssn = '...'`) are never kept:
the AUDIT payload is cut after the object name, and only a ROLE-class GRANT's statement is looked at, in
passing, for the objects and grantees it names.

Coverage is measured per source (one file): the time of its first and last entry, silences longer than
`max_gap`, and holes around lines that could not be read (corrupt, truncated, or in another format). Every
line with a readable time counts for coverage, whatever its database: the log was being written then.

Files, directories (every log file in them, rotated ones included), and `.gz` files are read as streams,
line by line: memory stays flat whatever the size of the logs. In a directory holding the same log in
several formats (postgresql-X.csv, .json and .log from `log_destination = 'csvlog,jsonlog,stderr'`), one is
read (csvlog, then jsonlog, then stderr) and the others are counted as skipped, so no read is counted twice.

The per-format line parsers are in `formats.py`; the records and per-source stats they yield, in `records.py`.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from sevtool.evidence.formats import guess_format, read_csv, read_json, read_stderr, sniff
from sevtool.evidence.prefix import PrefixParser
from sevtool.evidence.records import CSV, JSON, STDERR, AuditRecord, Clock, SourceStats

_FORMAT_RANK = {CSV: 0, JSON: 1, STDERR: 2}


class LogReader:
    """Reads log sources one after the other; `records()` streams the AUDIT records, `sources` holds the stats."""

    def __init__(
        self,
        paths: list[str | Path],
        *,
        database: str | None = None,
        line_prefix: str | None = None,
        max_gap: timedelta = timedelta(hours=1),
    ):
        self.database = database
        self.prefix = PrefixParser(line_prefix) if line_prefix else None
        self.max_gap = max_gap.total_seconds()
        self.sources: list[SourceStats] = []
        self.skipped: list[str] = []  # same log in another format, read from its csvlog or jsonlog twin
        self.unreadable: list[
            str
        ] = []  # files that could not be opened or decompressed, or stderr without --line-prefix
        self.files = self._expand([Path(p) for p in paths])

    # --- which files ------------------------------------------------------------------------

    def _expand(self, paths: list[Path]) -> list[tuple[Path, str | None]]:
        files: list[tuple[Path, str | None]] = []
        for path in paths:
            if path.is_dir():
                found = [
                    (p, guess_format(p)) for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")
                ]
                best: dict[str, int] = {}
                for p, fmt in found:
                    if fmt is not None:
                        best[_stem(p)] = min(best.get(_stem(p), 9), _FORMAT_RANK[fmt])
                for p, fmt in found:
                    if fmt is None:
                        continue
                    if _FORMAT_RANK[fmt] > best[_stem(p)]:
                        self.skipped.append(str(p))
                    else:
                        files.append((p, fmt))
            elif path.exists():
                files.append((path, guess_format(path)))
            else:
                self.unreadable.append(str(path))
        return files

    # --- reading ----------------------------------------------------------------------------

    def records(self) -> Iterator[AuditRecord]:
        for path, fmt in self.files:
            try:
                with _open(path) as stream:
                    fmt = fmt or sniff(stream)
                    if fmt == STDERR and self.prefix is None:
                        self.unreadable.append(f"{path}: stderr log; pass --line-prefix as in log_line_prefix")
                        continue
                    stats = SourceStats(str(path), fmt)
                    self.sources.append(stats)
                    if fmt == CSV:
                        yield from read_csv(stream, stats, database=self.database, max_gap=self.max_gap)
                    elif fmt == JSON:
                        yield from read_json(
                            stream, stats, database=self.database, max_gap=self.max_gap, clock=self._clock
                        )
                    else:
                        yield from read_stderr(
                            stream,
                            stats,
                            database=self.database,
                            max_gap=self.max_gap,
                            clock=self._clock,
                            prefix=self.prefix,
                        )
            except (OSError, EOFError, gzip.BadGzipFile, UnicodeError) as exc:
                self.unreadable.append(f"{path}: {exc}")

    @property
    def _clock(self) -> Clock:
        clock = getattr(self, "_shared_clock", None)
        if clock is None:
            clock = self._shared_clock = Clock()
        return clock

    def totals(self) -> dict:
        keys = ("entries", "audit", "other_database", "corrupt", "other_format")
        return {key: sum(getattr(s, key) for s in self.sources) for key in keys} | {
            "files": len(self.sources),
            "skipped_duplicate_format": len(self.skipped),
            "unreadable": len(self.unreadable),
        }


def _stem(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    for ext in (".csv", ".json", ".log"):
        if name.endswith(ext):
            return str(path.parent / name.removesuffix(ext))
        if ext + "." in name:  # rotated by logrotate: postgresql.csv.1
            return str(path.parent / name.replace(ext + ".", "."))
    return str(path.parent / name)


def _open(path: Path):
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return path.open("r", encoding="utf-8", errors="replace", newline="")
