"""`make chaos`'s table: `python -m tests.faults.chaos_table RESULTS.jsonl` prints the fault
matrix's results (one JSON line per fault, written by tests/faults/matrix.py) and exits 1
unless every fault hit listings in flight and lost, staled and resurrected nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(results: Path) -> int:
    rows = (
        [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    )
    print(
        f"{'fault':<40} {'listings':>8} {'in flight':>9} {'lost':>6} {'stale':>6} {'back':>6} "
        f"{'recover s':>9} {'max wait s':>10}"
    )
    for row in rows:
        wait = row.get("max_wait_s")  # the cluster faults' steady load only
        print(
            f"{row['fault']:<40} {row['listings']:>8} {row['in_flight']:>9} {row['lost']:>6} "
            f"{row['stale']:>6} {row['resurrected']:>6} {row['recover_s']:>9} "
            f"{'-' if wait is None else wait:>10}"
        )
    healed = all(
        r["in_flight"] > 0 and r["lost"] == r["stale"] == r["resurrected"] == 0 for r in rows
    )
    return 0 if rows and healed else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
