"""`python -m benchmarks` (make bench): every benchmark, as ratios to baselines of the same run."""

from __future__ import annotations

import json
import sys

from benchmarks import encode


def main() -> None:
    figures = encode.run()
    print(encode.report(figures))
    print(json.dumps({"encode": figures}, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
