"""Mixed-compression training: each image of each epoch drawn from one of several encodes."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from mlflow.tracking import MlflowClient

from sweep.config.build import build_sweep
from sweep.data.files import LabelledFile
from sweep.data.formats import sniff_format
from sweep.errors import OptionError
from sweep.store.locations import read_location
from sweep.tasks.mixed import MixedDataset, MixedFiles
from tests.conftest import FAST_SWEEP, compose_config, record_calls, run_sweep


class Tagged(torch.utils.data.Dataset):
    """Item i is (tag, i): which dataset answered."""

    def __init__(self, tag: int, size: int):
        self.tag, self.size = tag, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        return self.tag, index


def draws(dataset: MixedDataset) -> list[int]:
    return [dataset[i][0] for i in range(len(dataset))]


def test_a_mix_draws_each_image_from_every_setting_seeded_and_anew_each_epoch():
    mix = MixedDataset([Tagged(0, 400), Tagged(1, 400), Tagged(2, 400)])
    assert len(mix) == 400 and [mix[i][1] for i in range(5)] == list(range(5))  # same image
    torch.manual_seed(7)
    first, second = draws(mix), draws(mix)
    torch.manual_seed(7)
    assert draws(mix) == first  # a seed gives the same draws
    assert first != second  # and every epoch draws anew
    shares = [first.count(tag) / len(first) for tag in range(3)]
    assert all(abs(share - 1 / 3) < 0.08 for share in shares)  # uniform


def test_mixed_files_count_the_first_setting_and_keep_every_setting_aligned():
    a = [LabelledFile(f"a/{i}.png", i) for i in range(3)]
    b = [LabelledFile(f"b/{i}.jxl", i) for i in range(3)]
    files = MixedFiles(["original", "4"], [a, b])
    assert list(files) == a and files.per_setting == (a, b) and files.settings == ("original", "4")
    with pytest.raises(ValueError, match="different numbers of images"):
        MixedFiles(["original", "4"], [a, b[:2]])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("grid.train=[original,4,mixed]", "grid.mixed=[1]"), "grid.mixed: .*not in grid.train"),
        (("grid.train=[original,4,mixed]", "grid.mixed=[4]"), "grid.mixed: needs two or more"),
        (("grid.train=[original,mixed]",), "grid.mixed: needs two or more"),
        (("grid.train=[original,4,mixed]", "grid.mixed=[4,x]"), "grid.mixed: "),
    ],
)
def test_bad_mixes_name_the_option(overrides, message):
    with pytest.raises(OptionError, match=message):
        build_sweep(compose_config(*overrides), check_data=False)


def test_a_mixed_row_trains_on_its_settings_encodes_and_is_tested_on_every_setting(
    imagefolder, tmp_path, monkeypatch
):
    sweep = build_sweep(
        compose_config(
            "task=imagefolder",
            f"task.root={imagefolder}",
            f"results_dir={tmp_path}",
            "cluster=inline",
            "cluster.torch_threads=1",
            *FAST_SWEEP,
            "grid.train=[original,4,mixed]",
        )
    )
    assert sweep.train_settings == ["original", "4", "mixed"]
    assert sweep.mixed_settings == ("original", "4")  # null: every other train setting
    read = {}
    record_calls(monkeypatch, "train", "run", lambda stage: read.update({stage.setting: stage}))
    datasets = []
    import sweep.tasks.mixed as mixed

    original_dataset = mixed.training_dataset

    def spied(task, model, files, options):
        dataset = original_dataset(task, model, files, options)
        datasets.append((type(files).__name__, dataset))
        return dataset

    monkeypatch.setattr(mixed, "training_dataset", spied)
    report = run_sweep(sweep)

    # The mix has no encode of its own: it reads the encodes of original and 4.
    stage = read["mixed"]
    assert [e.setting for e in stage.upstream()] == ["original", "4"]
    assert stage.key not in {read["original"].key, read["4"].key}
    mixes = [dataset for name, dataset in datasets if name == "MixedFiles"]
    assert len(mixes) == 1 and len(mixes[0].datasets) == 2 and len(mixes[0]) == 18
    # The same images, in the same order: the dataset's own files, and their distance-4 encode.
    first, second = ([f.path for f in d.files] for d in mixes[0].datasets)
    assert all(p.endswith(".jpg") for p in first)
    assert all(sniff_format(read_location(p)[:32]) == "jxl" for p in second)
    assert [f.target for f in mixes[0].datasets[0].files] == [
        f.target for f in mixes[0].datasets[1].files
    ]
    assert not any(isinstance(d, MixedDataset) for n, d in datasets if n != "MixedFiles")
    with (report / "results.csv").open() as stream:
        rows = [r for r in csv.DictReader(stream) if r["train_setting"] == "mixed"]
    assert [r["test_setting"] for r in rows] == ["original", "4"]
    for row in rows:  # tested like any row, with an interval, and no DCR of its own
        assert math.isnan(float(row["train_dcr"]))
        assert float(row["ci_low"]) <= float(row["value"]) <= float(row["ci_high"])
        assert float(row["relative"]) >= 0
    assert (report / "heatmap_accuracy_setting.png").is_file()
    assert (report / "heatmap_accuracy_dcr.png").is_file()
    # Its MLflow child run has its cells and no train DCR (MLflow takes no NaN).
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    [child] = client.search_runs([experiment.experiment_id], "tags.train_setting = 'mixed'")
    assert "accuracy/test_004.0_4" in child.data.metrics and "train_dcr" not in child.data.metrics
