"""results.csv and its figures: the relative heatmaps per metric and the DCR curves.

Every file is written atomically so a crashed or concurrent run never leaves a half-written
report behind.
"""

from __future__ import annotations

import math
from pathlib import Path

from sweep.report.axis import DEFAULT_AXIS, SettingAxis
from sweep.report.heatmaps import plot_dcr_curves, plot_relative_heatmap
from sweep.report.tables import add_relative, headline_rows, write_results_csv


def write_report(
    rows: list[dict], dcr_rows: list[dict], out_dir: Path, axis: SettingAxis = DEFAULT_AXIS
) -> dict[str, Path]:
    """Writes the results CSV, two heatmaps per metric and the DCR plot into ``out_dir``.

    Args:
        rows: Result rows without ``relative`` (it is computed here).
        dcr_rows: Rows for ``plot_dcr_curves``.
        out_dir: Output folder; created if missing.
        axis: Positions and title of the codec's settings.

    Returns:
        Paths keyed ``"results.csv"``, ``"heatmap_<metric>_setting"``,
        ``"heatmap_<metric>_dcr"`` and ``"dcr_by_setting"``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    relative = add_relative(rows)
    paths = {"results.csv": write_results_csv(relative, out_dir / "results.csv", axis)}
    relative = headline_rows(relative)  # the figures show the seeds' mean, if several
    for metric in sorted({r["metric"] for r in relative}):
        if all(math.isnan(r["relative"]) for r in relative if r["metric"] == metric):
            continue  # nothing to draw; add_relative has warned
        for axes in ("setting", "dcr"):
            name = f"heatmap_{metric}_{axes}"
            path = out_dir / f"{name}.png"
            paths[name] = plot_relative_heatmap(relative, metric, path, axes, axis)
    paths["dcr_by_setting"] = plot_dcr_curves(dcr_rows, out_dir / "dcr_by_setting.png", axis)
    return paths
