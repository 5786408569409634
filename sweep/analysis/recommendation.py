"""What to do: the highest-DCR setting that keeps the headline metric, per storage scenario.

Three ways to use compression, each a line of the train x test grid:

* store compressed: train and test at the same setting (the diagonal); the bytes saved are
  those of both splits together;
* train on compressed data, test on originals (the original column); the train split's bytes;
* deploy on compressed inputs a model trained on originals (the original row); the test
  split's bytes.

A setting qualifies when the one-sided lower confidence bound of its relative headline metric
(value / original-original, paired bootstrap) is at least ``threshold``: the sweep is
`confidence` sure that the setting keeps that share of the metric. The recommendation is the
qualifying setting with the highest DCR, or none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sweep.analysis.bootstrap import Cell, lower_bound, percentile_interval
from sweep.errors import OptionError

ORIGINAL = "original"


@dataclass(frozen=True)
class RecommendOptions:
    """The `recommend` config group."""

    threshold: float = 0.99

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1.5:
            raise OptionError(
                f"is a share of the original metric, e.g. 0.99 for 99%, got {self.threshold}",
                "recommend.threshold",
            )


@dataclass(frozen=True)
class Scenario:
    name: str
    wording: str  # completed by the setting, e.g. "store train and test at distance 2"
    splits: tuple[str, ...]  # whose bytes the DCR counts

    def cell(self, setting: str) -> Cell:
        if self.name == "store_compressed":
            return (setting, setting)
        if self.name == "train_compressed":
            return (setting, ORIGINAL)
        return (ORIGINAL, setting)


SCENARIOS = (
    Scenario("store_compressed", "store train and test at {setting}", ("train", "test")),
    Scenario("train_compressed", "train at {setting}, test on originals", ("train",)),
    Scenario("deploy_compressed", "deploy on inputs at {setting}, trained on originals", ("test",)),
)


def scenario_dcr(dcr_rows: list[dict], splits: tuple[str, ...], setting: str) -> float | None:
    """1 - encoded / original bytes over the given splits at a setting (None if not encoded)."""
    rows = [r for r in dcr_rows if r["split"] in splits and r["setting"] == setting]
    if len(rows) != len(splits):
        return None
    original = sum(r["original_bytes"] for r in rows)
    encoded = sum(r["encoded_bytes"] for r in rows)
    return 1 - encoded / original if original else None


def recommend(
    metric: str,
    values: Mapping[Cell, float],
    relative: Mapping[Cell, float],
    relative_replicates: Mapping[Cell, np.ndarray],
    dcr_rows: list[dict],
    describe,
    options: RecommendOptions,
    confidence: float = 0.95,
) -> dict:
    """recommendation.json's content: per scenario the chosen setting (or None), why, and
    every candidate with its DCR, relative value, interval and lower bound.

    `describe(setting)` words a setting ("distance 2", "jpeg q80").
    """
    out = {"metric": metric, "threshold": options.threshold, "confidence": confidence,
           "scenarios": {}}  # fmt: skip
    settings = sorted({s for cell in values for s in cell if s != ORIGINAL})
    for scenario in SCENARIOS:
        candidates = []
        for setting in settings:
            cell = scenario.cell(setting)
            dcr = scenario_dcr(dcr_rows, scenario.splits, setting)
            if cell not in values or cell not in relative_replicates or dcr is None:
                continue
            replicates = relative_replicates[cell]
            low, high = percentile_interval(replicates, confidence)
            candidates.append(
                {
                    "setting": setting,
                    "train_setting": cell[0],
                    "test_setting": cell[1],
                    "dcr": dcr,
                    "value": values[cell],
                    "relative": relative[cell],
                    "relative_ci_low": low,
                    "relative_ci_high": high,
                    "relative_lower_bound": lower_bound(replicates, confidence),
                }
            )
        candidates.sort(key=lambda c: c["dcr"])
        qualifying = [c for c in candidates if c["relative_lower_bound"] >= options.threshold]
        best = max(qualifying, key=lambda c: c["dcr"], default=None)
        out["scenarios"][scenario.name] = {
            "recommended": best and best["setting"],
            "sentence": sentence(scenario, best, metric, options, confidence, describe),
            "candidates": candidates,
        }
    return out


def sentence(
    scenario: Scenario, best: dict | None, metric: str, options, confidence, describe
) -> str:
    """One plain sentence, e.g. "store train and test at distance 2: 71% fewer bytes,
    relative accuracy 99.6% [99.1, 100.2]"."""
    if best is None:
        what = scenario.wording.format(setting="any compressed setting")
        return (
            f"{what}: no setting keeps {options.threshold:.0%} of {metric} with "
            f"{confidence:.0%} confidence; keep the originals"
        )
    what = scenario.wording.format(setting=describe(best["setting"]))
    return (
        f"{what}: {best['dcr']:.0%} fewer bytes, relative {metric} {best['relative']:.1%} "
        f"[{best['relative_ci_low'] * 100:.1f}, {best['relative_ci_high'] * 100:.1f}]"
    )
