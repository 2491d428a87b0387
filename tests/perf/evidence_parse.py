"""Benchmark: sevtool's csvlog reader vs a bare `csv.reader` pass over the same 1,000,000-line pgaudit csvlog.

Not collected by pytest (no test_ prefix). Run: python tests/perf/evidence_parse.py [--lines N] [--rounds N]
The log and the passes are `sevtool.bench.evidence`'s, which `python -m sevtool.bench` runs as its evidence row;
this script adds the `tally` pass (the reader feeding ReadTally) and keeps each pass's in-process time.

Writes one csvlog shaped as PostgreSQL 15 + pgaudit write it (AUDIT READ lines of several sessions, ROLE lines,
ERROR and connection lines, a tenth of all lines of another database; ROLE GRANTs are 1 line in 200: each is
parsed for its objects and grantees, which costs about 15 times a READ line), then times, in the same run and alternating, each in a
fresh child process so each gets its own peak RSS:
  bare    for row in csv.reader(f): pass
  reader  every AuditRecord of LogReader(...).records(), with coverage bookkeeping
  tally   the reader feeding ReadTally, as `sevtool evidence` runs it
The issue's target: reader within 2x the bare pass, peak RSS flat (< 150 MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sevtool.bench.evidence import phase_argv, write_csvlog


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "postgresql.csv"
        write_csvlog(path, args.lines)
        print(f"{args.lines:,} csvlog lines, {path.stat().st_size / 1e6:.0f} MB", file=sys.stderr)
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for name in ("bare", "reader", "tally"):
                out = subprocess.run(phase_argv(name, path), capture_output=True, text=True, check=True)
                result = json.loads(out.stdout)
                if name not in best or result["seconds"] < best[name]["seconds"]:
                    best[name] = result
        for name, result in best.items():
            ratio = result["seconds"] / best["bare"]["seconds"]
            print(
                f"{name:7} {result['seconds']:7.2f} s  {ratio:4.2f}x bare  {result['items']:>9,} rows/records  peak RSS {result['peak_rss_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
