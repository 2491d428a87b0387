"""`python -m sevtool.evidence [--database DB] [--tally OBJ,...] PATH...`: read logs, print counts as JSON.

What the benchmark times as the reader's own process (the `bench` layer launches it by name, it imports nothing
of this layer): the AuditRecords the logs hold for the database, with coverage bookkeeping; with --tally, fed to
a ReadTally as `sevtool evidence` does. Counts only: no record, and no statement text, is printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sevtool.evidence")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--database")
    parser.add_argument("--tally", help="in-scope objects, comma-separated: feed every record to a ReadTally")
    args = parser.parse_args(argv)
    from sevtool.core.evidence import ReadTally
    from sevtool.evidence.logs import LogReader

    started = time.perf_counter()
    reader = LogReader(args.paths, database=args.database)
    tally = ReadTally(objects=set(args.tally.split(",")), principals={"all_employees"}) if args.tally else None
    count = 0
    for record in reader.records():
        if tally is not None:
            tally.add(record)
        count += 1
    print(
        json.dumps(
            {
                "items": count,
                "seconds": round(time.perf_counter() - started, 3),
                **reader.totals(),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
