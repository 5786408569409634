"""The bill before launch: `dry_run=true` wraps the experiment it names in `Bill`, which asks
it what it would run (`Experiment.planned`), prices it and prints it, running nothing.

The plan's keys are the real run's: the validations' keys are computed from the content
digests (read from the store's digest cache, never written), and a finished validation's
verdicts are applied as the sweep applies them. Nothing is written to the store, no Ray
starts, no MLflow run is made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sweep.codecs.base import ORIGINAL
from sweep.experiments.bill.counting import count_stages, pending_costs, predicted_screening
from sweep.experiments.bill.pricing import Bill, bytes_to_write, estimate, format_bill, summed
from sweep.experiments.bill.throughput import machine_device, throughputs
from sweep.session.experiment import Experiment, Planned, Session
from sweep.spec import Sweep
from sweep.stages.billing import BillScope
from sweep.stages.table import STAGE_KINDS
from sweep.stages.validate import Screening


@dataclass(frozen=True)
class BillExperiment(Experiment):
    """The bill of `experiment`, which it never runs.

    Args:
        experiment: The experiment to bill.
        calibrate: Time the codec and a few training steps on this machine (under about 30 s)
            where the store has no measured throughput (`dry_run_calibrate`).
    """

    experiment: Experiment
    calibrate: bool = True

    def bind(self, sweep: Sweep) -> BillExperiment:
        return BillExperiment(self.experiment.bind(sweep), self.calibrate)

    def run(self, session: Session) -> int:
        print(format_bill(bill_of(session, self.experiment, self.calibrate)))
        return 0

    def planned(self, session: Session, screening: Screening) -> Planned:
        return self.experiment.planned(session, screening)


def bill_of(session: Session, experiment: Experiment, calibrate: bool = True) -> Bill:
    """The bill of what the experiment would run now: nothing is run and nothing written."""
    sweep = session.sweep
    validation, screening = predicted_screening(sweep)
    planned = experiment.planned(session, screening)
    plan, notes = planned.plan, list(planned.notes)
    if sweep.codec.needs_sensitivity_map:
        notes.append(
            f"codec={sweep.codec.name} measures its sensitivity map first, and its encodes' "
            f"keys hold the map: its lossy encodes and the stages after them count as to run"
        )
    stages = [*validation.in_order(STAGE_KINDS), *plan.in_order(STAGE_KINDS)]
    counts = count_stages(sweep.store, stages)
    scope = BillScope(sweep.store, plan, sweep.options.epochs, sweep.cluster.eval_group_size)
    costs = pending_costs([validation, plan], scope)
    images = summed(cost.images for cost in costs.values())
    settings = [s for s in summed(c.encoded for c in costs.values()) if s != ORIGINAL]
    device = machine_device()
    figures, timed = throughputs(sweep, plan, images, settings, calibrate, device)
    threads = sweep.cluster.torch_threads or os.cpu_count() or 1
    cpu, gpu, hours = estimate(images, figures, device, threads)
    if any(value is None for value in hours.values()):
        notes.append(
            "a figure without a source is left out of the hours: dry_run_calibrate=true times "
            "it on this machine, a finished training of this model in the store measures it"
        )
    if screening.quarantined and sweep.on_error == "fail":
        notes.append(
            f"data.on_error=fail: the run would stop at {screening.quarantined[0]['path']}, "
            f"which the finished validation found unreadable"
        )
    elif screening.quarantined:
        notes.append(
            f"{len(screening.quarantined)} image(s) quarantined by the finished validation "
            f"are left out"
        )
    if sweep.cluster.mode == "ray" and sweep.cluster.address:
        notes.append(
            f"the hours are for this machine's device ({device}); the cluster at "
            f"{sweep.cluster.address} may have others"
        )
    return Bill(
        plan_key=plan.key,
        name=planned.name,
        title=(
            f"{sweep.task_name}, {sweep.model.name}, {sweep.codec.name}: "
            f"{len(plan.train_settings)} train x {len(plan.test_settings)} test settings, "
            f"{len(plan.seeds)} seed(s), {len(plan.splits['train'])} train / "
            f"{len(plan.splits['test'])} test images"
        ),
        device=device,
        counts=list(counts.values()),
        costs=costs,
        throughput=figures,
        cpu_hours=cpu,
        gpu_hours=gpu,
        hours_by_work=hours,
        bytes_to_write=bytes_to_write(costs, timed),
        cores=sweep.cluster.num_cpus or os.cpu_count() or 1,
        notes=notes,
    )
