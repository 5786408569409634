"""The bill's sums: hours from each kind of work's image passes and throughput, bytes from
what the pending stages write, and the bill printed as a plain-text table."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from sweep.experiments.bill.counting import KindCount
from sweep.experiments.bill.throughput import NONE, WORK, Throughput
from sweep.stages.kind import Cost

# The kinds of work that run on the accelerator where the machine has one.
ON_DEVICE = ("train", "evaluate")


@dataclass
class Bill:
    """The bill of one plan: counts, each kind's pending work, throughputs and the estimate."""

    plan_key: str
    # What is billed ("sweep 02a9ba50", "budget experiment") and its shape, in words.
    name: str
    title: str
    device: str
    counts: list[KindCount]
    # Per stage kind, its pending stages' cost (`StageKind.bill`).
    costs: dict[str, Cost]
    throughput: dict[str, Throughput]
    cpu_hours: float
    gpu_hours: float
    # Per kind of work (decode, encode, measure, train, evaluate); None: no figure for work
    # to do.
    hours_by_work: dict[str, float | None]
    bytes_to_write: dict[str, int | None]
    # The cores of a local run (cluster.num_cpus or this machine's), for a wall-time figure.
    cores: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def images(self) -> dict[str, int]:
        """The pending image passes by kind of work, summed over the kinds."""
        return summed(cost.images for cost in self.costs.values())

    @property
    def runs(self) -> dict[str, int]:
        """What is to run, e.g. {"trainings": 12, "evaluations": 144}."""
        return summed(cost.runs for cost in self.costs.values())

    def to_json(self) -> dict:
        return {
            "plan_key": self.plan_key,
            "name": self.name,
            "title": self.title,
            "device": self.device,
            "stages": {
                c.kind: {"total": c.total, "cached": c.cached, "to_run": c.to_run}
                for c in self.counts
            },
            "costs": {kind: asdict(cost) for kind, cost in self.costs.items()},
            "images": self.images,
            "runs": self.runs,
            "throughput": {
                name: asdict(figure) | {"images_per_second": figure.images_per_second}
                for name, figure in self.throughput.items()
            },
            "cpu_hours": self.cpu_hours,
            "gpu_hours": self.gpu_hours,
            "hours_by_work": self.hours_by_work,
            "bytes_to_write": self.bytes_to_write,
            "cores": self.cores,
            "notes": self.notes,
        }


def summed(counts) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for name, value in count.items():
            total[name] = total.get(name, 0) + value
    return total


def estimate(
    images: dict[str, int], figures: dict[str, Throughput], device: str, threads: int
) -> tuple[float, float, dict[str, float | None]]:
    """CPU-hours, GPU-hours and hours per kind of work (None: no figure for work to do).

    The CPU kinds of work run one image stream per core. Trainings and evaluations on the CPU
    use `threads` cores each (`cluster.torch_threads`, else every core); on a GPU their hours
    are GPU-hours (an evaluation's share of its GPU, `cluster.eval_gpu_fraction`, is not
    taken off: its rate was timed on a whole one).
    """
    hours: dict[str, float | None] = {}
    cpu = gpu = 0.0
    for work in WORK:
        count, seconds = images.get(work, 0), figures[work].seconds_per_image
        if not count:
            hours[work] = 0.0
            continue
        if seconds is None:
            hours[work] = None
            continue
        hours[work] = count * seconds / 3600
        if work in ON_DEVICE and device == "cuda":
            gpu += hours[work]
        elif work in ON_DEVICE:
            cpu += hours[work] * threads
        else:
            cpu += hours[work]
    return cpu, gpu, hours


def bytes_to_write(costs: dict[str, Cost], timed: dict) -> dict[str, int | None]:
    """Encoded images (from the timed bytes per image at each setting; the mean of the timed
    settings for the others), decode caches (height x width x 3 bytes an image, from the
    timed images' mean size) and trained weights (float32 parameters)."""
    encoded_by_setting = summed(cost.encoded for cost in costs.values())
    cached = sum(cost.cached for cost in costs.values())
    models = sum(cost.models for cost in costs.values())
    written = timed.get("bytes") or {}
    encoded = None
    if written:
        mean = statistics.mean(written.values())
        encoded = int(sum(n * written.get(s, mean) for s, n in encoded_by_setting.items()))
    elif not encoded_by_setting or not sum(encoded_by_setting.values()):
        encoded = 0
    cache = 0 if not cached else None
    if cached and timed.get("pixels"):
        cache = int(cached * timed["pixels"] * 3)
    parameters = timed.get("parameters")
    weights = 0 if not models else (None if parameters is None else 4 * parameters * models)
    return {"encoded_images": encoded, "decode_cache": cache, "weights": weights}


def format_hours(hours: float | None) -> str:
    if hours is None:
        return "?"
    return f"{hours:.2f} h" if hours >= 0.01 else f"{hours * 3600:.0f} s"


def format_bytes(count: int | None) -> str:
    if count is None:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def format_bill(bill: Bill) -> str:
    """The bill as a plain-text table."""
    lines = [f"bill of the {bill.name} ({bill.title})", ""]
    lines.append(f"{'stage kind':<12} {'total':>7} {'cached':>7} {'to run':>7}  pending work")
    for count in bill.counts:
        cost = bill.costs.get(count.kind)
        work = cost.work if cost is not None else ""
        lines.append(
            f"{count.kind:<12} {count.total:>7,} {count.cached:>7,} {count.to_run:>7,}  {work}"
        )
    runs = bill.runs
    to_run = ", ".join(f"{runs[name]} {name}" for name in runs) or "nothing"
    lines += ["", f"to run: {to_run}", "", f"{'throughput':<12} {'img/s':>9} {'hours':>9}  source"]
    for name, figure in bill.throughput.items():
        if figure.source == NONE and bill.hours_by_work.get(name) == 0:
            continue  # nothing of that kind to run
        rate = figure.images_per_second
        shown = "-" if rate is None else f"{rate:,.1f}"
        where = figure.source + (f" ({figure.detail})" if figure.detail else "")
        hours = format_hours(bill.hours_by_work.get(name))
        lines.append(f"{name:<12} {shown:>9} {hours:>9}  {where}")
    written = bill.bytes_to_write
    missing = [name for name, hours in bill.hours_by_work.items() if hours is None]
    left_out = f", without {', '.join(missing)} (no figure)" if missing else ""
    cache = (
        f", {format_bytes(written['decode_cache'])} of decode caches"
        if written.get("decode_cache") != 0
        else ""
    )
    lines += [
        "",
        f"estimate: {bill.cpu_hours:.2f} CPU-hours, {bill.gpu_hours:.2f} GPU-hours "
        f"(trainings and evaluations on {bill.device}){left_out}",
        *(
            [f"at least {bill.cpu_hours / bill.cores:.2f} h of wall time on {bill.cores} cores"]
            if bill.device == "cpu" and bill.cpu_hours and not missing
            else []
        ),
        f"to write: {format_bytes(written['encoded_images'])} of encoded images{cache}, "
        f"{format_bytes(written['weights'])} of trained weights",
    ]
    lines += [f"note: {note}" for note in bill.notes]
    lines.append("dry run: nothing was run or written (dry_run=false runs it)")
    return "\n".join(lines)
