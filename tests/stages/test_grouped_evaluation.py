"""Grouped evaluation: each test image decoded once for every model of its test setting, with
each cell's metrics, outcomes, key and resume those of evaluating it alone."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sweep.analysis.outcomes import OUTCOMES_FILE, read_outcomes
from sweep.config.build import build_sweep
from sweep.data import pixels
from sweep.data.demo_det import DemoDetReader
from sweep.data.files import LabelledFile
from sweep.engine.execute import execute, work_units
from sweep.errors import OptionError
from sweep.models.trained import WEIGHTS_FILE
from sweep.session.planning import plan_sweep, stage_context
from sweep.stages import evaluate
from sweep.stages.kind import StageKind
from sweep.stages.table import STAGE_KINDS
from sweep.store import DONE
from sweep.tasks.classification import ClassificationTask
from sweep.tasks.detection import DetectionTask
from sweep.tasks.segmentation import SegmentationTask
from tests.conftest import CLASSES, FAST_SWEEP, compose_config, write_jpeg
from tests.tasks.test_classification import MODEL as SWAV
from tests.tasks.test_classification import OPTIONS as SWAV_OPTIONS
from tests.tasks.test_classification import files_of
from tests.tasks.test_detection import OPTIONS as DETECTION_OPTIONS
from tests.tasks.test_detection import SMALL as DETECTOR
from tests.tasks.test_segmentation import ConstantModel, write_pair

# ---- the task kinds: evaluate_group against evaluate, model by model ------------------------


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """Counts the images decoded in this process (every reader calls `decode_bytes`)."""
    seen: list[int] = []
    decode = pixels.decode_bytes

    def counted(data):
        seen.append(len(data))
        return decode(data)

    monkeypatch.setattr(pixels, "decode_bytes", counted)
    return seen


def same_metrics(grouped: dict, alone: dict, ignored: tuple[str, ...] = ()) -> None:
    """Equal metrics, outcome arrays included (bit for bit: the same batches, the same code)."""
    grouped, alone = dict(grouped), dict(alone)
    outcomes, expected = grouped.pop("outcomes", {}), alone.pop("outcomes", {})
    assert set(outcomes) == set(expected)
    for name in outcomes:
        np.testing.assert_array_equal(outcomes[name], expected[name])
    for name in ignored:
        grouped.pop(name), alone.pop(name)
    assert grouped == alone


def saved(module: torch.nn.Module, folder: Path) -> Path:
    """A training's output folder holding the module's weights."""
    folder.mkdir()
    torch.save(module.state_dict(), folder / WEIGHTS_FILE)
    return folder


def test_classification_group_gives_each_model_its_own_metrics(imagefolder, tmp_path, decodes):
    """Three models that each predict one class: each keeps its own predictions and score."""
    task, test = ClassificationTask(), files_of(imagefolder, "test")
    folders = []
    for label in range(3):
        module = SWAV.build(3)
        with torch.no_grad():
            module.head[1].weight.zero_()
            module.head[1].bias.copy_(torch.nn.functional.one_hot(torch.tensor(label), 3) * 5.0)
        folders.append(saved(module, tmp_path / str(label)))
    # Batches of 4, 4 and 1: a group goes through every model batch by batch.
    options = dataclasses.replace(SWAV_OPTIONS, eval_batch_size=4)
    grouped = task.evaluate_group(SWAV, folders, test, 3, options)
    assert len(decodes) == len(test)  # once for the three models
    for label, (folder, metrics) in enumerate(zip(folders, grouped, strict=True)):
        assert metrics["outcomes"]["prediction"].tolist() == [label] * len(test)
        assert metrics["accuracy"] == pytest.approx(1 / 3)
        same_metrics(metrics, task.evaluate(SWAV, folder, test, 3, options))
    assert len(decodes) == 4 * len(test)


def test_segmentation_group_gives_each_model_its_own_metrics(tmp_path, decodes):
    """Constant predictors of classes 0, 1 and 2 on masks of known class counts."""
    rng = np.random.default_rng(0)
    masks = [
        np.array([[1] * 10] * 6 + [[2] * 10] * 4, np.uint8),  # 60 class 0, 40 class 1
        np.array([[3] * 10] * 5 + [[0] * 10] * 5, np.uint8),  # 50 class 2, 50 ignored
    ]
    files = [
        write_pair(tmp_path, rng.integers(0, 255, (*m.shape, 3), dtype=np.uint8), m, f"im{i}")
        for i, m in enumerate(masks)
    ]
    files = [file._replace(target={"label_ids": [1, 2, 3]}) for file in files]
    folders = []
    for label in range(3):
        module = ConstantModel().build(3)
        with torch.no_grad():
            module.bias.copy_(torch.nn.functional.one_hot(torch.tensor(label), 3) * 2.0)
        folders.append(saved(module, tmp_path / str(label)))
    task, options = SegmentationTask(), dataclasses.replace(SWAV_OPTIONS, eval_batch_size=2)
    grouped = task.evaluate_group(ConstantModel(), folders, files, 3, options)
    assert len(decodes) == len(files)
    # Class k everywhere: IoU of k = its pixels / all 150 labelled pixels.
    assert [m["miou"] for m in grouped] == pytest.approx([60 / 150 / 3, 40 / 150 / 3, 50 / 150 / 3])
    for folder, metrics in zip(folders, grouped, strict=True):
        same_metrics(metrics, task.evaluate(ConstantModel(), folder, files, 3, options))


def test_detection_group_equals_each_model_alone(tmp_path, decodes):
    reader = DemoDetReader(tmp_path / "demo_det", train_images=1, test_images=4)
    reader.prepare()
    test = [LabelledFile(str(reader.root / i.relpath), i.target) for i in reader.items("test")]
    folders = []
    for seed in (0, 1):  # two random initialisations
        torch.manual_seed(seed)
        folders.append(saved(DETECTOR.build(3), tmp_path / str(seed)))
    task = DetectionTask()
    grouped = task.evaluate_group(DETECTOR, folders, test, 3, DETECTION_OPTIONS)
    assert len(decodes) == len(test)
    for folder, metrics in zip(folders, grouped, strict=True):
        assert metrics["images_per_second"] > 0
        alone = task.evaluate(DETECTOR, folder, test, 3, DETECTION_OPTIONS)
        same_metrics(metrics, alone, ignored=("images_per_second",))


# ---- the executor: one task per test setting, each cell in its own folder ------------------

# 2 train settings x 2 seeds = 4 models, 2 test settings of 9 images each.
SEEDS = ("seeds=[0,1]",)
MODELS, TEST_SETTINGS, TEST_IMAGES = 4, 2, 9


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A classification sweep whose trainings and test encodes are done (no evaluation)."""
    root = tmp_path_factory.mktemp("grouped")
    for label, name in enumerate(CLASSES):
        for index in range(6):
            write_jpeg(root / "data" / "train" / name / f"{index}.jpg", label, index)
        for index in range(3):
            write_jpeg(root / "data" / "test" / name / f"{index}.jpg", label, 100 + index)
    sweep = sweep_of(root)
    plan = plan_sweep(sweep)
    tests = [plan.encodes[("test", setting)] for setting in plan.test_settings]
    before = plan.narrowed_to([*plan.replicate_trains.values(), *tests])
    execute(before, context_of(sweep, plan), sweep.cluster, show_progress=False)
    return sweep, plan


def sweep_of(root: Path, *overrides: str):
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={root / 'data'}",
        f"results_dir={root / 'results'}",
        "cluster=inline",
        "cluster.torch_threads=1",
        "tracking=none",
        "distortion.enabled=false",
        *FAST_SWEEP,
        *SEEDS,
        *overrides,
    )
    return build_sweep(cfg, check_data=False)


def context_of(sweep, plan):
    # Decodes in this process, where they are counted.
    context = stage_context(sweep, plan)
    return dataclasses.replace(
        context, options=dataclasses.replace(sweep.options, loader_workers=0)
    )


def evaluate_all(trained, group_size: int, stages=None) -> None:
    """Evaluates the sweep's cells (or the given ones) afresh, `group_size` models a task."""
    sweep, plan = trained
    if stages is None:
        shutil.rmtree(sweep.store.root / evaluate.NAME, ignore_errors=True)
        stages = list(plan.replicate_evaluations.values())
    cluster = dataclasses.replace(sweep.cluster, eval_group_size=group_size)
    execute(plan.narrowed_to(stages), context_of(sweep, plan), cluster, show_progress=False)


def stored(trained) -> dict[str, tuple[dict, dict]]:
    """Each cell's metrics.json and outcomes, by key."""
    sweep, plan = trained
    cells = {}
    for stage in plan.replicate_evaluations.values():
        _, outcomes = read_outcomes(sweep.store.path(evaluate.NAME, stage.key) / OUTCOMES_FILE)
        cells[stage.key] = (evaluate.read_metrics(sweep.store, stage), outcomes)
    return cells


def all_done(trained) -> bool:
    sweep, plan = trained
    cells = plan.replicate_evaluations.values()
    return all(sweep.store.is_done(evaluate.NAME, stage.key) for stage in cells)


@pytest.fixture
def group_calls(monkeypatch) -> list[list[Path]]:
    """The weights folders of every `evaluate_group` call of the classification task."""
    calls: list[list[Path]] = []
    original = ClassificationTask.evaluate_group

    def recorded(self, model, weights_dirs, *args):
        calls.append(list(weights_dirs))
        return original(self, model, weights_dirs, *args)

    monkeypatch.setattr(ClassificationTask, "evaluate_group", recorded)
    return calls


@pytest.mark.parametrize(
    ("group_size", "tasks"),
    [(12, TEST_SETTINGS), (3, 2 * TEST_SETTINGS), (1, MODELS * TEST_SETTINGS)],
)
def test_a_sweep_decodes_each_test_image_once_per_group(
    trained, group_size, tasks, decodes, group_calls
):
    evaluate_all(trained, group_size)
    # 12: D x N decodes, not D x D x N; 3: groups of 3 and 1; 1: one cell at a time.
    assert len(group_calls) == tasks
    assert len(decodes) == tasks * TEST_IMAGES
    assert sorted(len(call) for call in group_calls) == sorted(
        {12: [4, 4], 3: [3, 1, 3, 1], 1: [1] * 8}[group_size]
    )
    assert all_done(trained)


def test_grouped_cells_equal_cells_evaluated_one_at_a_time(trained):
    evaluate_all(trained, 1)
    alone = stored(trained)
    evaluate_all(trained, 12)
    grouped = stored(trained)
    assert set(grouped) == set(alone) and len(alone) == MODELS * TEST_SETTINGS
    for key, (metrics, outcomes) in grouped.items():
        assert metrics == alone[key][0]
        assert set(outcomes) == set(alone[key][1]) == {"label", "prediction", "correct"}
        for name, values in outcomes.items():
            np.testing.assert_array_equal(values, alone[key][1][name])
    # The models differ: a group that handed one model's results to all would not pass.
    predictions = {tuple(o["prediction"]) for _, o in alone.values()}
    assert len(predictions) > 1


@pytest.fixture(scope="module")
def trained_segmentation(tmp_path_factory):
    """The segmentation demo, 2 tiny SegFormers x 2 test settings, trained and encoded."""
    results = tmp_path_factory.mktemp("grouped_segmentation")
    cfg = compose_config(
        "task=demo_seg",
        "task.reader.train_images=4",
        "task.reader.test_images=3",
        "task.reader.image_size=32",
        f"results_dir={results}",
        "model.architecture.hidden_sizes=[8,16,16,16]",
        "model.architecture.num_attention_heads=[1,1,1,1]",
        "model.architecture.decoder_hidden_size=16",
        "train.epochs=1",
        "train.batch_size=2",
        "grid.train=[original,4]",
        "grid.test=[original,4]",
        "cluster=inline",
        "cluster.torch_threads=1",
        "tracking=none",
        "progress=false",
        "distortion.enabled=false",
    )
    sweep = build_sweep(cfg)
    plan = plan_sweep(sweep)
    tests = [plan.encodes[("test", setting)] for setting in plan.test_settings]
    before = plan.narrowed_to([*plan.replicate_trains.values(), *tests])
    execute(before, context_of(sweep, plan), sweep.cluster, show_progress=False)
    return sweep, plan


def test_grouped_segmentation_cells_equal_cells_evaluated_one_at_a_time(
    trained_segmentation, decodes
):
    evaluate_all(trained_segmentation, 1)
    alone = stored(trained_segmentation)
    assert len(decodes) == 2 * 2 * 3
    decodes.clear()
    evaluate_all(trained_segmentation, 12)
    assert len(decodes) == 2 * 3
    grouped = stored(trained_segmentation)
    assert set(grouped) == set(alone) and len(alone) == 4
    for key, (metrics, outcomes) in grouped.items():
        assert metrics == alone[key][0]
        assert set(outcomes) == {"confusion"}
        np.testing.assert_array_equal(outcomes["confusion"], alone[key][1]["confusion"])


def test_a_group_evaluates_only_its_unfinished_cells(trained, group_calls):
    sweep, plan = trained
    shutil.rmtree(sweep.store.root / evaluate.NAME, ignore_errors=True)
    done = plan.replicate_evaluations[("4", "4", 1)]
    evaluate_all(trained, 12, [done])
    folder = sweep.store.path(evaluate.NAME, done.key)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert DONE in before and len(group_calls) == 1
    group_calls.clear()

    evaluate_all(trained, 12, list(plan.replicate_evaluations.values()))
    # The done cell's setting: its three other models; the other setting: all four.
    assert sorted(len(call) for call in group_calls) == [3, 4]
    [partial] = [call for call in group_calls if len(call) == 3]
    assert sweep.store.path(done.train.kind, done.train.key) not in partial
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert after == before
    assert all(
        sweep.store.is_done(evaluate.NAME, s.key) for s in plan.replicate_evaluations.values()
    )

    # A group whose cells are all done reads them and evaluates nothing.
    group_calls.clear()
    stages = [s for s in plan.replicate_evaluations.values() if s.encode == done.encode]
    context = context_of(sweep, plan)
    results = evaluate.evaluate_group(context, stages)
    assert group_calls == []
    assert results == [evaluate.read_metrics(sweep.store, s) for s in stages]


@pytest.mark.slow
def test_on_ray_grouped_cells_equal_cells_evaluated_one_at_a_time(trained):
    """Group tasks on a private Ray of two CPUs write what inline single cells write."""
    from sweep.session.planning import shutdown_ray

    evaluate_all(trained, 1)
    alone = stored(trained)
    sweep, plan = trained
    shutil.rmtree(sweep.store.root / evaluate.NAME)
    cluster = dataclasses.replace(
        sweep.cluster, mode="ray", address=None, num_cpus=2, eval_group_size=12
    )
    cells = plan.narrowed_to(plan.replicate_evaluations.values())
    try:
        execute(cells, context_of(sweep, plan), cluster, show_progress=False)
    finally:
        shutdown_ray()
    grouped = stored(trained)
    assert set(grouped) == set(alone)
    for key, (metrics, outcomes) in grouped.items():
        assert metrics == alone[key][0]
        for name, values in outcomes.items():
            np.testing.assert_array_equal(values, alone[key][1][name])


def test_work_units_group_one_test_setting_in_plan_order(trained):
    _, plan = trained
    pending = [(stage, []) for stage in plan.in_order(STAGE_KINDS)]
    units = work_units(pending, 3)
    flat = [stage.key for unit in units for stage, _ in unit]
    assert sorted(flat) == sorted(stage.key for stage, _ in pending)
    # Each task where its first stage was in the plan's order (kinds in the table's order).
    order = [stage.key for stage, _ in pending]
    firsts = [order.index(unit[0][0].key) for unit in units]
    assert firsts == sorted(firsts)
    for unit in units:
        kinds = {stage.kind for stage, _ in unit}
        assert len(kinds) == 1
        if kinds == {evaluate.NAME}:
            assert len(unit) <= 3 and len({stage.encode.key for stage, _ in unit}) == 1
        else:
            assert len(unit) == 1
    evaluations = [unit for unit in units if unit[0][0].kind == evaluate.NAME]
    assert sorted(len(unit) for unit in evaluations) == [1, 1, 3, 3]
    # Every other stage keeps its task and its place before the evaluations.
    assert len(units) == len(pending) - MODELS * TEST_SETTINGS + len(evaluations)


# ---- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "many"])
def test_a_bad_group_size_names_the_option(tmp_path, value):
    cfg = compose_config(
        "task=imagefolder", f"task.root={tmp_path}", f"cluster.eval_group_size={value}"
    )
    with pytest.raises(OptionError) as error:
        build_sweep(cfg, check_data=False)
    assert error.value.option == "cluster.eval_group_size"


def test_the_default_group_size_and_a_kind_without_its_worker():
    assert build_sweep(compose_config("task=demo"), check_data=False).cluster.eval_group_size > 1
    with pytest.raises(TypeError, match="go together"):
        StageKind("demo", 1, (), (), run=print, read=print, group_of=id)
    assert STAGE_KINDS[evaluate.NAME].task_name == "evaluate_group"
