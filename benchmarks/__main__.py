"""`python -m benchmarks` (make bench): every benchmark, as ratios to baselines of the same run."""

from __future__ import annotations

import json
import sys

from benchmarks import audit, distortion, encode


def main() -> None:
    results = {}
    for name, benchmark in (("encode", encode), ("distortion", distortion), ("audit", audit)):
        results[name] = benchmark.run()
        print(benchmark.report(results[name]), flush=True)
    print(json.dumps(results, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
