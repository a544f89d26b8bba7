"""Run every benchmark in turn: `python -m bench.run [NAME_FILTER ...]` (`make bench`).

Each `bench/<name>_bench.py` runs in its own process (so one benchmark's imports and threads do
not colour the next), writes its JSON to `bench/results/`, and the summary lists what was met.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def discover(filters: list[str]) -> list[str]:
    names = sorted(p.stem for p in BENCH.glob("*_bench.py"))
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    return names


def main(argv: list[str]) -> int:
    names = discover(argv)
    if not names:
        print("no benchmark matched", argv)
        return 1
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, check=False)
        took = time.monotonic() - started
        if proc.returncode != 0:
            failed.append(name)
            print(f"   {name} failed (exit {proc.returncode}) after {took:.0f}s", flush=True)
        else:
            print(f"   {name} done in {took:.0f}s", flush=True)
    print("\nresults:")
    for path in sorted((BENCH / "results").glob("*.json")):
        r = json.loads(path.read_text())
        state = "met" if r.get("met") else "NOT met"
        print(f"  {r['name']:<28} {r['metric']} = {r['value']:.4g} "
              f"(target {r['target']}) {state}")
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
