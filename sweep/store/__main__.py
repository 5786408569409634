"""`python -m sweep.store clean RESULTS_DIR [--older-than-hours H]`: removes what writers that
died left in a store, and nothing that a finished output holds.

On a local disk: the temporary folders of dead writers (a writer of this host whose process is
gone at once, any other once older than the age). On object storage: payload prefixes that no
DONE manifest names (a writer killed before its manifest, or one that lost a race) once older
than the age; the default age, 24 hours, leaves alone any writer still uploading.
"""

from __future__ import annotations

import argparse
import sys

from sweep.store import StoreError, open_store
from sweep.store.local import STALE_SECONDS
from sweep.store.locations import join_location


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sweep.store", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    clean = commands.add_parser("clean", help="remove unpublished payloads and temporaries")
    clean.add_argument("results_dir", help="the sweep's results_dir: a folder or a URL")
    clean.add_argument(
        "--older-than-hours",
        type=float,
        default=STALE_SECONDS / 3600,
        help="leave alone what is younger (default: %(default)s)",
    )
    options = parser.parse_args(arguments)
    store = open_store(join_location(options.results_dir, "store"))
    try:
        removed = store.remove_stale_temporaries(options.older_than_hours * 3600)
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{store.url}: removed {removed} unpublished payload(s) or temporary folder(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
