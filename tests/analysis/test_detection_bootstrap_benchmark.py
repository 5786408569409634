"""benchmarks/detection_bootstrap.py runs end to end on a slice of its VOC-sized cell."""

from __future__ import annotations

import pytest

from benchmarks import detection_bootstrap


def test_the_benchmark_recounts_torchmetrics_value_and_reports_its_interval():
    result = detection_bootstrap.run(rounds=1, images=150)
    assert result["images"] == 150 and result["replicates"] == 1000
    assert result["map_50_recounted"] == pytest.approx(result["map_50"], abs=1e-4)
    low, high = result["map_50_interval"]
    assert low < result["map_50"] < high
    line = detection_bootstrap.report(result)
    assert "seconds" not in line and "12 x 12 grid" in line and "B = 1000" in line
