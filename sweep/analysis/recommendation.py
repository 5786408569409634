"""What to do: the highest-DCR setting that keeps the headline metric, per storage scenario.

Three ways to use compression, each a line of the train x test grid:

* store compressed: train and test at the same setting (the diagonal); the bytes saved are
  those of both splits together;
* train on compressed data, test on originals (the original column); the train split's bytes;
* deploy on compressed inputs a model trained on originals (the original row); the test
  split's bytes.

A setting qualifies when the one-sided lower confidence bound of its relative headline metric
(value / original-original) is at least ``threshold``: the sweep is `confidence` sure that the
setting keeps that share of the metric. The bound comes from the cell's evidence
(sweep/analysis/intervals.py): Newcombe's paired score interval for a one-seed share of images
(accuracy), at two-sided level 2 * confidence - 1; the paired bootstrap otherwise. The
recommendation is the qualifying setting with the highest DCR, or none; with none, it says
about how many test images would let a setting qualify, or that more images cannot help.

When original/original is at chance (sweep/analysis/chance.py) no setting is recommended:
the grid has measured nothing that compression could keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sweep.analysis.bootstrap import Cell
from sweep.analysis.chance import AtChance
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


class RelativeEvidence(Protocol):
    """What a cell's relative value rests on (intervals.BootstrapRatio,
    proportions.PairedRatio)."""

    method: str
    images: float

    def interval(self, confidence: float) -> tuple[float, float]: ...

    def lower_bound(self, confidence: float) -> float: ...

    def images_needed(self, threshold: float, confidence: float) -> int | None: ...


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
    evidence: Mapping[Cell, RelativeEvidence],
    dcr_rows: list[dict],
    describe,
    options: RecommendOptions,
    confidence: float = 0.95,
    chance: AtChance | None = None,
) -> dict:
    """recommendation.json's content: per scenario the chosen setting (or None), why, and
    every candidate with its DCR, relative value, interval, lower bound, the interval's
    method and the test images it would need to qualify (None: more cannot help).

    `describe(setting)` words a setting ("distance 2", "jpeg q80"). With `chance` (the
    reference is at chance) no scenario recommends a setting, and each says why.
    """
    out = {"metric": metric, "threshold": options.threshold, "confidence": confidence,
           "scenarios": {}}  # fmt: skip
    if chance is not None:
        out["chance"] = chance.as_json()
    settings = sorted({s for cell in values for s in cell if s != ORIGINAL})
    for scenario in SCENARIOS:
        candidates = []
        for setting in settings:
            cell = scenario.cell(setting)
            dcr = scenario_dcr(dcr_rows, scenario.splits, setting)
            if cell not in values or cell not in evidence or dcr is None:
                continue
            low, high = evidence[cell].interval(confidence)
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
                    "relative_lower_bound": evidence[cell].lower_bound(confidence),
                    "interval": evidence[cell].method,
                    "test_images": int(evidence[cell].images),
                    "images_needed": evidence[cell].images_needed(options.threshold, confidence),
                }
            )
        candidates.sort(key=lambda c: c["dcr"])
        qualifying = [c for c in candidates if c["relative_lower_bound"] >= options.threshold]
        best = None if chance else max(qualifying, key=lambda c: c["dcr"], default=None)
        if chance is not None:
            what = scenario.wording.format(setting="any compressed setting")
            said = f"{what}: the grid cannot answer: {chance.reason()}"
        else:
            said = sentence(scenario, best, metric, options, confidence, describe, candidates)
        out["scenarios"][scenario.name] = {
            "recommended": best and best["setting"],
            "sentence": said,
            "candidates": candidates,
        }
    return out


def sentence(
    scenario: Scenario,
    best: dict | None,
    metric: str,
    options,
    confidence,
    describe,
    candidates: list[dict] = (),
) -> str:
    """One plain sentence, e.g. "store train and test at distance 2: 71% fewer bytes,
    relative accuracy 99.6% [99.1, 100.2]"; with no setting chosen, what more test images
    would do."""
    if best is None:
        what = scenario.wording.format(setting="any compressed setting")
        images = max((c["test_images"] for c in candidates), default=0)
        return (
            f"{what}: no setting keeps {options.threshold:.0%} of {metric} with "
            f"{confidence:.0%} confidence on {images} test images; keep the originals"
            + more_images(candidates, metric, options.threshold, describe)
        )
    what = scenario.wording.format(setting=describe(best["setting"]))
    return (
        f"{what}: {best['dcr']:.0%} fewer bytes, relative {metric} {best['relative']:.1%} "
        f"[{best['relative_ci_low'] * 100:.1f}, {best['relative_ci_high'] * 100:.1f}]"
    )


def more_images(candidates: list[dict], metric: str, threshold: float, describe) -> str:
    """What a larger test set would do when no setting qualifies: the fewest test images
    that would let a setting qualify at the same observed values, or why none would."""
    if not candidates:
        return ""
    able = [c for c in candidates if c["images_needed"] is not None]
    if able:
        least = min(able, key=lambda c: (c["images_needed"], -c["dcr"]))
        return (
            f". With about {least['images_needed']:,} test images that look alike, "
            f"{describe(least['setting'])} (relative {metric} {least['relative']:.1%} here) "
            f"could show it"
        )
    if any(c["relative"] > threshold for c in candidates):
        return (
            f". The settings above {threshold:.0%} lie too close to it for any test set to show it"
        )
    return (
        f". No setting's own relative {metric} reaches {threshold:.0%}, so more test images "
        f"cannot help"
    )
