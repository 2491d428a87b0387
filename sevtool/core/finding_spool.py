"""A scan's findings as compressed chunks, made into `Finding` objects a chunk at a time as they are read.

A 200,000-table exposure is 200,000 findings of about 190 bytes each as objects, all alive beside the catalog the
scan still works on. Here each finding is its field values, pickled and compressed by the thousand (a few bytes
a finding: the names repeat), so the scan's peak is its catalog alone; the store, the summary and `--json` read
the findings again one chunk at a time.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from operator import attrgetter
from typing import Any, overload

from sevtool.core.exposure import Finding

_CHUNK = 2048  # findings per compressed chunk: the most ever decoded at once while reading

_FIELDS = tuple(Finding.__dataclass_fields__)
_values_of: Callable[[Finding], tuple[Any, ...]] = attrgetter(*_FIELDS)
# The slots' own setters: the values come from a Finding that was validated when made, and it is frozen.
_SETTERS = tuple(getattr(Finding, name).__set__ for name in _FIELDS)


def _rebuilt(values: tuple[Any, ...], _new: Callable[[type[Finding]], Finding] = object.__new__) -> Finding:
    finding = _new(Finding)
    for setter, value in zip(_SETTERS, values, strict=False):  # as many as the fields, by `_values_of`
        setter(finding, value)
    return finding


def _decoded(chunk: bytes) -> list[tuple[Any, ...]]:
    values: list[tuple[Any, ...]] = pickle.loads(zlib.decompress(chunk))  # written by this process only
    return values


class FindingSpool(Sequence[Finding]):
    """Findings in the order they were added; iterable any number of times, also while more are added."""

    __slots__ = ("_chunks", "_count", "_pending")

    def __init__(self, findings: Iterable[Finding] = ()):
        self._chunks: list[bytes] = []
        self._pending: list[tuple[Any, ...]] = []
        self._count = 0
        self.extend(findings)

    def append(self, finding: Finding) -> None:
        self._pending.append(_values_of(finding))
        self._count += 1
        if len(self._pending) >= _CHUNK:
            self._chunks.append(zlib.compress(pickle.dumps(self._pending, protocol=pickle.HIGHEST_PROTOCOL), 1))
            self._pending = []

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.append(finding)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Finding]:
        chunks, pending = list(self._chunks), list(self._pending)  # what is there now, whatever is added meanwhile
        for chunk in chunks:
            yield from map(_rebuilt, _decoded(chunk))
        yield from map(_rebuilt, pending)

    @overload
    def __getitem__(self, index: int) -> Finding: ...

    @overload
    def __getitem__(self, index: slice) -> list[Finding]: ...

    def __getitem__(self, index: int | slice) -> Finding | list[Finding]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("finding index out of range")
        chunk, at = divmod(index, _CHUNK)
        values = _decoded(self._chunks[chunk]) if chunk < len(self._chunks) else self._pending
        return _rebuilt(values[at])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to a list of the same findings, so not hashable either

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, islice(self, 3)))
        return f"FindingSpool([{shown}{', ...' if self._count > 3 else ''}], {self._count} findings)"
