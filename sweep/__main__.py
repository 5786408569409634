"""`python -m sweep [group=option ...] [key=value ...]`: compose, validate, run the experiment.

`experiment=` chooses what runs (conf/experiment/: the grid by default, budget, nightly,
sensitivity_maps); `dry_run=true` prints its bill instead. Mistakes in the command line or the
config exit with code 2 before any work, with a message that names the option and what is
allowed (exit codes: sweep/cli.py). `--help` and `--cfg job` are Hydra's own.
"""

from __future__ import annotations

from sweep.cli import main_of


def main() -> None:
    main_of("config")


if __name__ == "__main__":
    main()
