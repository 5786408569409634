"""The train x test grid, `python -m sweep` (experiment=grid, conf/experiment/grid.yaml).

One training per train setting (and seed), evaluated on every test setting; the report,
its recommendation and the MLflow runs. Prints where results.csv is and the recommendation's
sentences; exits 69 when MLflow logging was deferred (tracking.on_unreachable=defer).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from sweep.analysis.recommendation import SCENARIOS
from sweep.session.experiment import Experiment, Planned, Session
from sweep.session.grid import run_grid
from sweep.session.planning import plan_sweep
from sweep.stages.validate import Screening
from sweep.tracking.deferred import LOGGING_DEFERRED_EXIT, report_logging_deferred


@dataclass(frozen=True)
class GridExperiment(Experiment):
    """The train x test grid: it takes no options of its own (grid=, train=, seeds= ...)."""

    def run(self, session: Session) -> int:
        report = run_grid(session)
        print(f"results: {report / 'results.csv'}")
        # What to do, in plain sentences (sweep/analysis/recommendation.py).
        recommendation = json.loads((report / "recommendation.json").read_text())
        for scenario in SCENARIOS:
            print(f"recommendation: {recommendation['scenarios'][scenario.name]['sentence']}")
        if report_logging_deferred(session.sweep.results_dir, report):
            print(
                "warning: MLflow logging is deferred to the next run (see above)", file=sys.stderr
            )
            return LOGGING_DEFERRED_EXIT
        return 0

    def planned(self, session: Session, screening: Screening) -> Planned:
        plan = plan_sweep(session.sweep, screening)
        return Planned(plan, f"sweep {plan.key[:8]}")
