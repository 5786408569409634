"""`python -m benchmarks [name ...]` (make bench): every benchmark, or the named ones, as
ratios to baselines of the same run."""

from __future__ import annotations

import json
import sys

from benchmarks import (
    audit,
    dct_models,
    detection_bootstrap,
    distortion,
    encode,
    evaluation,
    loader,
    sensitivity,
    storage,
)

BENCHMARKS = {
    "encode": encode,
    "distortion": distortion,
    "audit": audit,
    "sensitivity": sensitivity,
    "dct_models": dct_models,
    "loader": loader,
    "evaluation": evaluation,
    "storage": storage,
    "detection_bootstrap": detection_bootstrap,
}


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark {unknown[0]}; known: {list(BENCHMARKS)}", file=sys.stderr)
        sys.exit(2)
    results = {}
    for name in names:
        benchmark = BENCHMARKS[name]
        results[name] = benchmark.run()
        print(benchmark.report(results[name]), flush=True)
    print(json.dumps(results, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
