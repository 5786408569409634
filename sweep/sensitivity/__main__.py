"""`python -m sweep.sensitivity [the sweep's overrides]`: the DCT sensitivity maps of a sweep's
models, training the models that are missing, without evaluating the grid.

The sweep's config with experiment=sensitivity_maps (conf/sensitivity_maps.yaml;
sweep/experiments/sensitivity_maps.py), which measures both methods.
"""

from __future__ import annotations

from sweep.cli import main_of


def main() -> None:
    main_of("sensitivity_maps")


if __name__ == "__main__":
    main()
