"""The benchmark's tables: each sevtool command beside the strongest alternative, and how time grows with size."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tabulate import tabulate

from sevtool.bench.measure import Samples

# Peak RSS each command may reach, by the largest size it ran at.
RSS_LIMITS_MB = ((45_000, 200.0), (200_000, 250.0))
GROWTH_MEASURES = ("scan", "plan", "apply", "verify (exposed)", "verify (after the fix)", "undo")
GROWTH_LIMIT = 1.1  # time per table at the largest size / at the main size


@dataclass
class Row:
    measure: str
    sevtool_s: float | None
    alternative: str
    alternative_s: float | None
    target: str
    ok: bool | None  # None: shown for reference
    peak_rss_mb: float | None
    detail: str

    @property
    def ratio(self) -> str:
        if self.sevtool_s is None or not self.alternative_s:
            return "-"
        return f"{self.sevtool_s / self.alternative_s:.2f}x"


def rss_limit(tables: int) -> float:
    for size, limit in RSS_LIMITS_MB:
        if tables <= size:
            return limit
    return RSS_LIMITS_MB[-1][1]


def comparison(
    samples: Samples,
    tables: int,
    measure: str,
    alternative: str | None,
    limit: float | None,
    detail: str,
    *,
    label: str | None = None,
    correct: bool = True,
    rss_limit_mb: float | None = None,
) -> Row:
    """sevtool's median beside the alternative's; `limit`: the most sevtool's time may be, as a multiple of it;
    `rss_limit_mb`: a row's own memory target, where it is not the one for the size."""
    mine = samples.seconds(tables, measure)
    theirs = samples.seconds(tables, alternative) if alternative else None
    runs = ", ".join(f"{s:.2f}" for s in samples.rounds(tables, measure))
    if alternative:
        runs += " vs " + ", ".join(f"{s:.2f}" for s in samples.rounds(tables, alternative))
    rss = samples.peak_rss_mb(tables, measure)
    rss_cap = rss_limit(tables) if rss_limit_mb is None else rss_limit_mb
    ok = None if limit is None or theirs is None else correct and mine <= limit * theirs
    if rss is not None and ok is not None:
        ok = ok and rss <= rss_cap
    target = "-" if limit is None else f"<= {limit:g}x, RSS <= {rss_cap:.0f} MB"
    return Row(
        label or measure, mine, alternative or "-", theirs, target, ok, rss, f"{detail}; runs {runs} s".lstrip("; ")
    )


def absolute(
    samples: Samples, tables: int, measure: str, limit_s: float | None, detail: str, *, label: str | None = None
) -> Row:
    mine = samples.seconds(tables, measure)
    rss = samples.peak_rss_mb(tables, measure)
    runs = ", ".join(f"{s:.2f}" for s in samples.rounds(tables, measure))
    ok = None if limit_s is None else mine < limit_s and (rss is None or rss <= rss_limit(tables))
    return Row(
        label or measure,
        mine,
        "-",
        None,
        "-" if limit_s is None else f"< {limit_s:g} s",
        ok,
        rss,
        f"{detail}; runs {runs} s",
    )


@dataclass
class GrowthRow:
    measure: str
    per_table_us: dict[int, float]  # size -> microseconds per table
    peak_rss_mb: dict[int, float | None]
    ratio: float | None  # per table at the largest size / at the main size
    ok: bool | None


def growth(samples: Samples, sizes: list[int], main: int) -> list[GrowthRow]:
    rows = []
    largest = max(sizes)
    for measure in GROWTH_MEASURES:
        present = [size for size in sizes if samples.has(size, measure)]
        per_table = {size: samples.seconds(size, measure) / size * 1e6 for size in present}
        ratio = (
            per_table[largest] / per_table[main]
            if largest in per_table and main in per_table and largest != main
            else None
        )
        rows.append(
            GrowthRow(
                measure,
                per_table,
                {size: samples.peak_rss_mb(size, measure) for size in present},
                ratio,
                None if ratio is None else ratio <= GROWTH_LIMIT,
            )
        )
    return rows


def render(rows: list[Row], growth_rows: list[GrowthRow], sizes: list[int], main: int) -> str:
    table = tabulate(
        [
            (
                r.measure,
                _s(r.sevtool_s),
                r.alternative,
                _s(r.alternative_s),
                r.ratio,
                r.target,
                {True: "ok", False: "MISSED", None: ""}[r.ok],
                "-" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f} MB",
                r.detail,
            )
            for r in rows
        ],
        headers=[
            "measure",
            "sevtool",
            "alternative",
            "alternative's",
            "sevtool ÷ alternative",
            "target",
            "",
            "peak RSS",
            "detail",
        ],
        tablefmt="github",
    )
    head = (
        ["measure"]
        + [f"{size:,} tables: µs/table (RSS)" for size in sizes]
        + [f"{max(sizes):,} ÷ {main:,} per table", ""]
    )
    grown = tabulate(
        [
            [g.measure]
            + [
                f"{g.per_table_us[s]:.1f} ({g.peak_rss_mb[s] or 0:.0f} MB)" if s in g.per_table_us else "-"
                for s in sizes
            ]
            + ["-" if g.ratio is None else f"{g.ratio:.2f}x", {True: "ok", False: "MISSED", None: ""}[g.ok]]
            for g in growth_rows
        ],
        headers=head,
        tablefmt="github",
    )
    return (
        f"{table}\n\nGrowth (target: time per table at {max(sizes):,} <= {GROWTH_LIMIT}x that at {main:,}):\n\n{grown}"
    )


def as_json(rows: list[Row], growth_rows: list[GrowthRow]) -> dict:
    return {"rows": [{**asdict(r), "ratio": r.ratio} for r in rows], "growth": [asdict(g) for g in growth_rows]}


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"
