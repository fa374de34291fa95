"""``python3 -m bench.profile <folder>``: the cProfile files a profiled worker wrote (see
bench/app.py, ``$TASKFLOW_BENCH_PROFILE``), summed per role and printed.

Roles: ``worker`` (the supervisor's main loop: claiming, writing outcomes, collecting) and
``child`` (every thread of every prefork child: running the workflows).
"""

from __future__ import annotations

import argparse
import pstats
import sys
from collections.abc import Sequence
from pathlib import Path


def summarize(folder: Path, role: str, sort: str, limit: int) -> bool:
    """Print the summed profile of ``role``; False if there is none."""
    files = sorted(folder.glob(f"{role}-*.prof"))
    if not files:
        return False
    stats = pstats.Stats(str(files[0]), stream=sys.stdout)
    for extra in files[1:]:
        stats.add(str(extra))
    print(f"===== {role}: {len(files)} profile(s), sorted by {sort} =====")
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Print the profiles; 1 if the folder holds none."""
    p = argparse.ArgumentParser(prog="python3 -m bench.profile", description=__doc__)
    p.add_argument("folder", type=Path)
    p.add_argument("--sort", default="tottime", help="pstats sort key (default: tottime)")
    p.add_argument("--limit", type=int, default=30, help="lines per role (default: 30)")
    p.add_argument("--role", choices=["worker", "child"], action="append")
    args = p.parse_args(argv)
    found = [
        summarize(args.folder, r, args.sort, args.limit) for r in args.role or ("worker", "child")
    ]
    if not any(found):
        print(f"no .prof files in {args.folder}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
