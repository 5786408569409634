"""A heatmap of a metric whose original/original is at chance says the grid cannot answer."""

from __future__ import annotations

from sweep.analysis.intervals import AT_CHANCE
from sweep.report import heatmaps
from sweep.report.heatmaps import plot_relative_heatmap
from sweep.report.tables import add_relative
from tests.report.test_results import make_rows


def drawn_title(monkeypatch, rows, tmp_path) -> str:
    titles = []

    def save(fig, path):
        titles.append(fig.axes[0].get_title())
        fig.clf()
        heatmaps.plt.close(fig)
        return path

    monkeypatch.setattr(heatmaps, "save_figure", save)
    plot_relative_heatmap(rows, "mIoU", tmp_path / "heat.png")
    return titles[0]


def test_the_title_says_the_grid_cannot_answer_at_chance(monkeypatch, tmp_path):
    rows = add_relative(make_rows(["original", "1", "4"]))
    assert "cannot answer" not in drawn_title(monkeypatch, rows, tmp_path)
    note = "the grid cannot answer: original/original 5.1% is at chance (5.0%)"
    at_chance = [row | {AT_CHANCE: note} for row in rows]
    assert drawn_title(monkeypatch, at_chance, tmp_path) == f"Relative mIoU: {note}"
