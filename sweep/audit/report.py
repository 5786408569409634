"""Tables and figures for a dataset audit: what compression the image files already carry.

``write_audit_report`` turns the per-file ``FileAudit`` records into CSV tables (every file, the
anomalies, counts per split and bits-per-pixel statistics; see ``tables``) and three figures
(histograms of the settings per split, a width x height heatmap, and a 2-D projection of the
per-file settings; see ``histograms``, ``size_heatmap`` and ``projection``).
``tables.summarize`` gives the headline numbers to log as MLflow metrics. Every file is written
atomically so a crashed or concurrent run never leaves a half-written report behind.
"""

from __future__ import annotations

from pathlib import Path

from sweep.audit.histograms import plot_histograms
from sweep.audit.projection import plot_projection
from sweep.audit.records import FileAudit
from sweep.audit.size_heatmap import plot_size_heatmap
from sweep.audit.tables import (
    write_anomalies_csv,
    write_bits_per_pixel_csv,
    write_files_csv,
    write_summary_csv,
)


def write_audit_report(records: list[FileAudit], out_dir: Path) -> dict[str, Path]:
    """Writes the audit tables and figures into ``out_dir`` (created if missing).

    Args:
        records: One ``FileAudit`` per file of the dataset, any splits.
        out_dir: Output folder.

    Returns:
        Paths keyed by file name: ``files.csv``, ``anomalies.csv``, ``summary.csv``,
        ``bits_per_pixel.csv``, ``histograms.png``, ``size_heatmap.png``, ``projection.png``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "files.csv": write_files_csv(records, out_dir / "files.csv"),
        "anomalies.csv": write_anomalies_csv(records, out_dir / "anomalies.csv"),
        "summary.csv": write_summary_csv(records, out_dir / "summary.csv"),
        "bits_per_pixel.csv": write_bits_per_pixel_csv(records, out_dir / "bits_per_pixel.csv"),
        "histograms.png": plot_histograms(records, out_dir / "histograms.png"),
        "size_heatmap.png": plot_size_heatmap(records, out_dir / "size_heatmap.png"),
        "projection.png": plot_projection(records, out_dir / "projection.png"),
    }
