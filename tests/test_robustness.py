"""Bad input never crashes a loader, and a failed write never leaves a half-built output."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import faces
from common.atomic import atomic_dir
from common.errors import FacemoodError
from train.data import load_dataset

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes_as_csv_give_a_clean_error(tmp_path, data):
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    with pytest.raises(FacemoodError):
        load_dataset(path)


@FUZZ
@given(rows=st.lists(st.tuples(st.text(max_size=4), st.text(max_size=40), st.sampled_from(
    ["Training", "PublicTest", "PrivateTest", "", "x"])), max_size=6))
def test_malformed_rows_give_a_clean_error(tmp_path, rows):
    path = tmp_path / "fer.csv"
    path.write_text("emotion,pixels,Usage\n" + "\n".join(",".join(r) for r in rows) + "\n")
    with pytest.raises(FacemoodError):
        load_dataset(path)


@FUZZ
@given(st.lists(st.binary(max_size=400), min_size=1, max_size=4))
def test_random_image_files_are_skipped_not_fatal(tmp_path_factory, blobs):
    root = faces.write_class_folders(tmp_path_factory.mktemp("fuzz"), per_class=4, classes=("a", "b"))
    for i, blob in enumerate(blobs):
        (root / "a" / f"junk{i}.jpg").write_bytes(blob)
    dataset = load_dataset(root)
    assert len(dataset.skipped) == len(blobs)
    assert sum(len(dataset.split(s)) for s in ("train", "val", "test")) == 8


def test_symlink_loop_and_non_image_entries_do_not_hang(tmp_path):
    root = faces.write_class_folders(tmp_path / "d", per_class=5, classes=("a", "b"))
    (root / "a" / "loop").symlink_to(root / "a")
    (root / "a" / "loop.jpg").symlink_to(root / "a" / "loop.jpg")  # a link to itself
    dataset = load_dataset(root)
    assert len(dataset.skipped) == 1 and dataset.labels == ["a", "b"]


def test_atomic_dir_keeps_the_old_output_when_writing_fails_midway(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("complete old output")
    with pytest.raises(OSError, match="disk full"):
        with atomic_dir(target, marker="old.txt") as tmp:
            (tmp / "new.txt").write_text("half of the new output")
            raise OSError(28, "No space left on device (disk full, simulated)")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind


def _tree(root):
    """Every path under `root` with a file's bytes (None for a folder): what a test compares."""
    return {p.relative_to(root): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("make, message", [
    (lambda t: t.write_text("someone's notes"), "is not a folder"),
    (lambda t: (t.mkdir(), (t / "thesis.tex").write_text("years of work")), "holds no index.html"),
    (lambda t: (t.mkdir(), (t / "index.html").symlink_to(t / "elsewhere")), "holds no index.html"),
    (lambda t: (t.parent / "real").mkdir() or t.symlink_to(t.parent / "real"), "symbolic link"),
])
def test_atomic_dir_refuses_to_replace_what_is_not_an_earlier_output(tmp_path, make, message):
    target = tmp_path / "dist"
    make(target)
    before = _tree(tmp_path)
    with pytest.raises(FacemoodError, match=message) as info:
        with atomic_dir(target, marker="index.html") as tmp:
            (tmp / "index.html").write_text("new site")
    assert "\n" not in str(info.value)
    assert _tree(tmp_path) == before  # nothing changed, no temporary folder left


def test_an_index_html_or_metadata_json_of_another_tool_is_not_an_earlier_output(tmp_path):
    """A blog's folder has an index.html and a model exported by another tool a metadata.json; only
    folders facemood wrote are replaced: a site by its service worker's cache name, a model folder by
    its metadata's format."""
    from common.metadata import MODEL_MARKER
    from web.render import SITE_MARKER

    blog, other_model = tmp_path / "blog", tmp_path / "exported"
    blog.mkdir()
    (blog / "index.html").write_text("<h1>my blog</h1>")
    (blog / "sw.js").write_text("self.addEventListener('fetch', () => {});")
    other_model.mkdir()
    (other_model / "metadata.json").write_text('{"format": "another-tool", "labels": ["a", "b"]}')
    (other_model / "weights.bin").write_bytes(b"weights")
    before = _tree(tmp_path)
    for target, marker, what in ((blog, SITE_MARKER, "sw.js"), (other_model, MODEL_MARKER, "metadata.json")):
        with pytest.raises(FacemoodError, match=f"holds no {what} written by facemood"):
            with atomic_dir(target, marker=marker) as tmp:
                (tmp / "new").write_text("new output")
    assert _tree(tmp_path) == before
    (other_model / "metadata.json").write_text('{\n  "format": "facemood-model",\n  "labels": ["a", "b"]\n}')
    with atomic_dir(other_model, marker=MODEL_MARKER) as tmp:  # now an earlier model of facemood's
        (tmp / "metadata.json").write_text("new")
    assert [p.name for p in other_model.iterdir()] == ["metadata.json"]


def test_atomic_dir_refuses_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "index.html").write_text("an earlier site, but also where the user stands")
    monkeypatch.chdir(tmp_path)
    for target in (".", tmp_path, tmp_path.parent):
        with pytest.raises(FacemoodError, match="current folder"):
            with atomic_dir(target, marker="index.html"):
                pass
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_atomic_dir_replaces_an_empty_folder_or_an_earlier_output(tmp_path):
    for name, old in (("empty", []), ("earlier", ["metadata.json", "model.h5"])):
        target = tmp_path / name
        target.mkdir()
        for file in old:
            (target / file).write_text("old")
        with atomic_dir(target, marker="metadata.json") as tmp:
            (tmp / "metadata.json").write_text("new")
        assert [p.name for p in target.iterdir()] == ["metadata.json"]
        assert (target / "metadata.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "empty"]


@pytest.mark.parametrize("failing_call", [1, 2])  # old -> backup, or new -> target
def test_atomic_dir_swap_failure_is_one_line_and_keeps_the_old_output(tmp_path, monkeypatch, failing_call):
    from common import atomic

    target = tmp_path / "model"
    target.mkdir()
    (target / "metadata.json").write_text("old")
    real_replace, calls = atomic.os.replace, []

    def busy_replace(src, dst):
        calls.append((src, dst))
        if len(calls) == failing_call:
            raise OSError(16, "Device or resource busy")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", busy_replace)
    with pytest.raises(FacemoodError, match="Device or resource busy"):
        with atomic_dir(target, marker="metadata.json") as tmp:
            (tmp / "metadata.json").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no .model.new-* or .model.old-* left
    assert (target / "metadata.json").read_text() == "old"


def test_atomic_dir_interrupted_between_the_renames_puts_the_old_output_back(tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM, which build.py turns into it) after the old output is moved aside and
    before the new one takes its place: the old output is back where it was, nothing else left."""
    from common import atomic

    target = tmp_path / "dist"
    target.mkdir()
    (target / "index.html").write_text("old")
    real_replace, calls = atomic.os.replace, []

    def interrupted_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target, marker="index.html") as tmp:
            (tmp / "index.html").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["dist"]
    assert (target / "index.html").read_text() == "old"


@pytest.mark.parametrize("output_left", [False, True])
def test_a_backup_left_by_a_killed_swap_is_put_back_or_removed(tmp_path, output_left):
    """A run killed outright between the swap's two renames leaves the old output as
    .NAME.old-PID: the next run into NAME puts it back (then replaces it as usual), or removes it
    when NAME is there after all. A running process's backup is left alone."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: no process has this number now (or it is another's, left alone)
    target = tmp_path / "dist"
    backup = tmp_path / f".dist.old-{dead_pid}"
    backup.mkdir()
    (backup / "index.html").write_text("old")
    if output_left:
        target.mkdir()
        (target / "index.html").write_text("current")
    running = tmp_path / f".dist.old-{os.getppid()}"  # this test's parent: alive
    running.mkdir()
    seen = []
    with atomic_dir(target, marker="index.html") as tmp:
        seen = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".dist.new-"))
        (tmp / "index.html").write_text("new")
    assert seen == sorted(["dist", running.name])  # the old output back in place before the new one
    assert (target / "index.html").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["dist", running.name])


def test_site_render_interrupted_while_copying_keeps_previous_site(tmp_path, monkeypatch):
    from conftest import SHIPPED_MODEL
    from web import render

    dist = render.render_site(SHIPPED_MODEL, tmp_path / "dist")
    before = {p.relative_to(dist): p.read_bytes() for p in dist.rglob("*") if p.is_file()}
    calls = {"n": 0}
    real_copy = shutil.copy

    def failing_copy(src, dst, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real_copy(src, dst, **kwargs)

    monkeypatch.setattr(render.shutil, "copy", failing_copy)
    with pytest.raises(OSError):
        render.render_site(SHIPPED_MODEL, dist)
    after = {p.relative_to(dist): p.read_bytes() for p in dist.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]


def test_a_relative_out_from_another_folder_gets_the_whole_site(tmp_path):
    """The bundlers run in the project's folder: a relative --out given elsewhere must still get
    every file, and nothing may land in the project's folder."""
    from conftest import ROOT

    before = sorted(p.name for p in ROOT.iterdir())
    done = subprocess.run([sys.executable, str(ROOT / "build.py"), "site", "--out", "dist"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name in ("index.html", "vendor/tf-runtime.min.js", "assets/js/main.min.js", "model/model.json"):
        assert (tmp_path / "dist" / name).is_file(), name
    assert sorted(p.name for p in ROOT.iterdir()) == before


def test_training_failure_leaves_the_model_folder_untouched(tmp_path, monkeypatch):
    from train import train as training
    from train.config import TrainConfig

    model_dir = tmp_path / "model"
    shutil.copytree(faces_model_stub(tmp_path), model_dir)
    before = sorted(p.name for p in model_dir.iterdir())
    data = faces.write_class_folders(tmp_path / "data", per_class=6)

    def broken_plot(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training, "plot_learning_curves", broken_plot)
    with pytest.raises(OSError):
        training.train(data, model_dir, TrainConfig(epochs=1, max_steps=1, batch_size=8, input_size=48),
                       progress=False)
    assert sorted(p.name for p in model_dir.iterdir()) == before
    assert (model_dir / "metadata.json").read_text() == STUB_METADATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "model", "stub"]


# An earlier model folder's metadata as facemood writes it (only its format is read here).
STUB_METADATA = '{\n  "format": "facemood-model"\n}\n'


def faces_model_stub(tmp_path):
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "metadata.json").write_text(STUB_METADATA)
    (stub / "model.h5").write_bytes(b"previous model")
    return stub


def test_metadata_from_another_version_or_tool_is_refused(tmp_path):
    from common.metadata import load_metadata

    (tmp_path / "metadata.json").write_text('{"format": "facemood-model", "format_version": 99, "labels": ["a", "b"]}')
    with pytest.raises(FacemoodError, match="format version 99 is not supported"):
        load_metadata(tmp_path)
    (tmp_path / "metadata.json").write_text('{"labels": ["a", "b"]}')
    with pytest.raises(FacemoodError, match="not a facemood model description"):
        load_metadata(tmp_path)
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(FacemoodError, match="cannot read model metadata"):
        load_metadata(tmp_path)


def test_labels_that_do_not_match_the_model_are_refused(tiny_build, tmp_path):
    import json

    from train.train import load_trained

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["labels"] = ["only", "two"]
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(FacemoodError, match="model has 3 outputs but metadata lists 2 labels"):
        load_trained(model_dir)


def test_ctrl_c_keeps_the_best_epoch_and_resume_continues(tmp_path, capsys):
    import hashlib

    from train.config import TrainConfig
    from train.keras_env import keras
    from train.train import train

    class CtrlCAfterSecondEpoch(keras.callbacks.Callback):
        """Ctrl-C in the middle of the third epoch, as a person would press it."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 2:
                raise KeyboardInterrupt

    data = faces.write_class_folders(tmp_path / "data", per_class=10)
    model_dir = tmp_path / "model"
    backbone = tmp_path / "backbone.h5"  # weights to start from, as `--weights FILE` takes them
    keras.applications.MobileNetV2(input_shape=(48, 48, 3), alpha=0.35, include_top=False,
                                   weights=None).save_weights(str(backbone))
    config = TrainConfig(epochs=5, max_steps=2, batch_size=8, input_size=48, dropout=0.35, weights=str(backbone))
    first = train(data, model_dir, config, progress=False, callbacks=[CtrlCAfterSecondEpoch()])
    assert first["training"]["interrupted"] is True and first["training"]["epochs_run"] == 2
    assert "--resume" in capsys.readouterr().err
    saved = hashlib.sha256((model_dir / "model.h5").read_bytes()).hexdigest()
    # Resuming keeps the saved architecture even though the default input size differs.
    second = train(data, model_dir, TrainConfig(epochs=1, max_steps=1, batch_size=8), progress=False, resume=True)
    assert second["training"]["resumed_from_sha256"] == saved
    # The run it continued stays on record, for the model card's list of training runs.
    earlier = second["training"]["resumed_from"]
    assert (earlier["epochs_run"], earlier["interrupted"], earlier.get("resumed_from")) == (2, True, None)
    # and its epochs stay in metrics.json, drawn before this run's in learning_curves.png
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert [len(run["loss"]) for run in metrics["earlier_runs_history"]] == [2] and len(metrics["history"]["loss"]) == 1
    assert second["architecture"]["input_size"] == 48 and second["training"]["interrupted"] is False
    # Nor is the network's dropout, or where its weights began, what this run's (default) options say.
    assert second["architecture"]["weights"] == "file" and second["training"]["config"]["weights"] == "backbone.h5"
    assert second["training"]["config"]["dropout"] == pytest.approx(0.35)


def test_ctrl_c_before_the_first_epoch_leaves_nothing(tmp_path):
    from train.config import TrainConfig
    from train.keras_env import keras
    from train.train import train

    class CtrlCAtOnce(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    data = faces.write_class_folders(tmp_path / "data", per_class=6)
    with pytest.raises(KeyboardInterrupt):
        train(data, tmp_path / "model", TrainConfig(epochs=2, max_steps=2, batch_size=8, input_size=48),
              progress=False, callbacks=[CtrlCAtOnce()])
    assert not (tmp_path / "model").exists()


def _resumable_copy(tiny_build, tmp_path, seed):
    """A copy of the tiny build's model as if trained with `seed` (on the same seeded folder split)."""
    model_dir = shutil.copytree(tiny_build["model_dir"], tmp_path / "model")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["training"]["config"]["seed"] = seed
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    return model_dir


def test_resume_keeps_the_recorded_seed_and_refuses_another_split(tiny_build, tmp_path):
    from train.config import TrainConfig
    from train.train import train

    model_dir = _resumable_copy(tiny_build, tmp_path, seed=5)
    quick = dict(epochs=1, max_steps=1, batch_size=8)
    # The folder has no val/ sub-folder: the seed picks the validation images, so another one would
    # train on the model's earlier validation images.
    with pytest.raises(FacemoodError, match="--seed 5, which splits this data differently from --seed 6"):
        train(tiny_build["data"], model_dir, TrainConfig(**quick, seed=6), progress=False, resume=True)
    resumed = train(tiny_build["data"], model_dir, TrainConfig(**quick), progress=False, resume=True)
    assert resumed["training"]["config"]["seed"] == 5


def test_resume_keeps_what_conversion_chose_for_the_page(tiny_build, tmp_path, capsys):
    """Training on from a converted model must not quietly hand the page other crops or other
    shards: the choices made at conversion come back at the next plain `convert`. A class bias
    fitted to the earlier weights does not, and the user is told."""
    from convert.export import convert
    from train.config import TrainConfig
    from train.train import train

    model_dir = _resumable_copy(tiny_build, tmp_path, seed=0)
    convert(model_dir, quantize="float16", crop_margin=0.3, test_time_flip=True, standardize=False, smoothing=0.1,
            keep_float16=["depthwise"], progress=False)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["inference"]["class_bias"] = {"min_recall": 0.4, "fitted_on": "val",
                                           "bias": {label: 0.1 for label in metadata["labels"]}}
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    capsys.readouterr()
    resumed = train(tiny_build["data"], model_dir, TrainConfig(epochs=1, max_steps=1, batch_size=8), progress=False,
                    resume=True)
    assert ("note: the class bias fitted to the earlier weights was dropped; fit again with "
            "`build.py convert --data DATA --min-recall 0.4`") in capsys.readouterr().err
    assert "class_bias" not in resumed["inference"]
    again = convert(model_dir, progress=False)
    assert again["crop"]["margin"] == 0.3
    assert again["inference"] == {"test_time_flip": True, "smoothing": 0.1}
    assert again["tfjs"]["quantize"] == "float16" and again["tfjs"]["float16_kinds"] == ["depthwise"]
    assert "conversion" not in again


def test_resume_on_other_data_is_refused(tiny_build, tmp_path):
    from train.config import TrainConfig
    from train.train import train

    model_dir = _resumable_copy(tiny_build, tmp_path, seed=0)
    before = _tree(model_dir)
    other = faces.write_class_folders(tmp_path / "other", per_class=9)
    with pytest.raises(FacemoodError, match="cannot resume: the model was trained on other data .* not be held out"):
        train(other, model_dir, TrainConfig(epochs=1, max_steps=1, batch_size=8), progress=False, resume=True)
    assert _tree(model_dir) == before


def test_a_teacher_trained_on_other_data_or_another_split_is_refused(tiny_build, tmp_path):
    from train.config import TrainConfig
    from train.train import _load_teacher

    teacher = str(tiny_build["model_dir"])  # trained with the default seed, 0
    labels = ["frown", "open", "smile"]
    own = load_dataset(tiny_build["data"], seed=0)
    assert _load_teacher(TrainConfig(teacher=teacher), labels, own)[0] is not None
    other = load_dataset(faces.write_class_folders(tmp_path / "other", per_class=9))
    with pytest.raises(FacemoodError, match="the teacher was trained on other data"):
        _load_teacher(TrainConfig(teacher=teacher), labels, other)
    with pytest.raises(FacemoodError, match="the teacher was trained with --seed 0"):
        _load_teacher(TrainConfig(teacher=teacher, seed=3), labels, load_dataset(tiny_build["data"], seed=3))


def _bad_csv(tmp, mutate):
    path = faces.write_fer_csv(tmp / "fer.csv")
    rows = path.read_text().splitlines()
    path.write_text("\n".join(mutate(rows)) + "\n")
    return path


def _first_pixel(value):
    """A row mutation: the first row's first pixel value becomes `value`."""
    def mutate(rows):
        emotion, pixels, usage = rows[1].split(",")
        return [rows[0], ",".join([emotion, value + " " + pixels.split(" ", 1)[1], usage]), *rows[2:]]

    return mutate


def _folder_with(tmp, extra):
    root = faces.write_class_folders(tmp / "data", per_class=5, classes=("a", "b"))
    extra(root)
    return root


BAD_DATA = {
    "missing path": lambda t: t / "nowhere",
    "empty folder": lambda t: (t / "empty").mkdir() or t / "empty",
    "empty file": lambda t: (t / "empty.csv").write_text("") or t / "empty.csv",
    "wrong header": lambda t: _bad_csv(t, lambda r: ["label,image,split"] + r[1:]),
    "short pixel row": lambda t: _bad_csv(t, lambda r: r[:1] + [r[1].split(",")[0] + "," + r[1].split(" ", 1)[1]] + r[2:]),
    "non-numeric pixel": lambda t: _bad_csv(t, lambda r: r[:1] + [r[1].replace(" ", " x", 1)] + r[2:]),
    "label out of range": lambda t: _bad_csv(t, lambda r: r[:1] + ["7" + r[1][1:]] + r[2:]),
    "class without images": lambda t: _folder_with(t, lambda root: (root / "c").mkdir()),
    "only one class": lambda t: faces.write_class_folders(t / "one", per_class=5, classes=("a",)),
    "no validation rows": lambda t: _bad_csv(t, lambda r: [row for row in r if not row.endswith("PublicTest")]),
    "pixel value beyond int32": lambda t: _bad_csv(t, _first_pixel("99999999999")),
    "superscript digit as pixel": lambda t: _bad_csv(t, _first_pixel("\u00b2")),  # str.isdigit() takes it
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_through_the_cli_keeps_the_previous_model(tmp_path, capsys, case):
    """One line on stderr, exit code 1, no traceback, and the model folder exactly as it was."""
    import build

    data = BAD_DATA[case](tmp_path)
    model_dir = shutil.copytree(faces_model_stub(tmp_path), tmp_path / "model")
    before = {p.name: p.read_bytes() for p in model_dir.iterdir()}
    code = build.main(["train", "--data", str(data), "--model-dir", str(model_dir), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    assert {p.name: p.read_bytes() for p in model_dir.iterdir()} == before


def test_debug_shows_the_traceback(tmp_path, capsys):
    import build

    assert build.main(["--debug", "train", "--data", str(tmp_path / "nowhere")]) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "d", "--batch-size", "0"], "argument --batch-size: must be at least 1, not 0"),
    (["train", "--data", "d", "--epochs", "0"], "argument --epochs: must be at least 1, not 0"),
    (["train", "--data", "d", "--dropout", "1.5"], "argument --dropout: must be at least 0 and below 1, not 1.5"),
    (["train", "--data", "d", "--learning-rate", "0"], "argument --learning-rate: must be above 0"),
    (["train", "--data", "d", "--teacher-weight", "2"], "argument --teacher-weight: must be above 0 and at most 1"),
    (["all", "--data", "d", "--low-res", "nan"], "argument --low-res: must be at least 0 and at most 1, not nan"),
    (["all", "--data", "d", "--patience", "-1"], "argument --patience: must be at least 0"),
    (["train", "--data", "d", "--input-size", "0"], "argument --input-size: must be at least 1"),
    (["train", "--data", "d", "--batch-size", "many"], "argument --batch-size: 'many' is not an integer"),
    (["serve", "--port", "70000"], "argument --port: must be at least 0 and at most 65535, not 70000"),
    (["compare", "--data", "d", "--subset", "0"], "argument --subset: must be above 0 and at most 1"),
    # The site step shows no progress, so it offers no switch to hide it.
    (["site", "--quiet"], "unrecognized arguments: --quiet"),
    # Settings that act only with another are refused without it, not ignored.
    (["train", "--data", "d", "--teacher-weight", "0.3"], "--teacher-weight acts only with --teacher"),
    (["all", "--data", "d", "--teacher-temp", "3"], "--teacher-temperature acts only with --teacher"),
    (["train", "--data", "d", "--ferplus-weight=0.2"], "--ferplus-weight acts only with --ferplus"),
])
def test_numbers_out_of_range_are_one_line_usage_errors(capsys, args, message):
    import build

    with pytest.raises(SystemExit) as info:
        build.main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err.strip().splitlines()[-1] and "Traceback" not in err


def test_a_setting_given_with_the_one_it_needs_is_taken():
    import build

    args = build._parser().parse_args(["train", "--data", "d", "--teacher", "t", "--teacher-weight", "0.3",
                                       "--ferplus", "f", "--ferplus-weight", "0.2"])
    build._check_needed_options(build._parser(), args)  # no usage error
    config = build._train_config(args)
    assert (config.teacher_weight, config.ferplus_weight) == (0.3, 0.2)


def test_a_folder_that_cannot_be_written_is_a_one_line_error(tmp_path, capsys):
    """An OSError (here: no folder can be made under /proc) ends like a FacemoodError: `error: ...`."""
    import build
    from conftest import SHIPPED_MODEL

    assert build.main(["site", "--model-dir", str(SHIPPED_MODEL), "--out", "/proc/facemood/dist"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: /proc/facemood") and "Traceback" not in "\n".join(err)
    assert build.main(["--debug", "site", "--model-dir", str(SHIPPED_MODEL), "--out", "/proc/facemood/dist"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_all_refuses_a_site_folder_it_may_not_replace_before_training(tmp_path, capsys):
    """`all` checks its --out first: a folder of another site is refused before hours of training
    would replace the model, not after."""
    import build

    blog, model_dir = tmp_path / "blog", tmp_path / "model"
    blog.mkdir()
    (blog / "index.html").write_text("<h1>my blog</h1>")
    code = build.main(["all", "--data", str(tmp_path / "nowhere"), "--model-dir", str(model_dir), "--out", str(blog)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "not replacing this folder" in err[-1] and "nowhere" not in err[-1]
    assert [p.name for p in blog.iterdir()] == ["index.html"] and not model_dir.exists()


@pytest.mark.parametrize("out, model", [("same", "same"), ("model/site", "model"), ("dist", "dist/model")])
def test_all_refuses_a_site_and_a_model_folder_inside_one_another_before_training(tmp_path, capsys, monkeypatch,
                                                                                   out, model):
    """The site replaces its whole folder: a model folder that is it, holds it or lies in it would
    be refused only after training (the same folder), or deleted with the old site (inside it)."""
    import build

    monkeypatch.setattr(build, "run_train", lambda args: pytest.fail("trained before the check"))
    code = build.main(["all", "--data", "d", "--model-dir", str(tmp_path / model), "--out", str(tmp_path / out)])
    assert code == 1 and "must lie apart, neither inside the other" in capsys.readouterr().err


@pytest.mark.parametrize("stop_in, said", [
    ("train", "the best epoch so far was saved to"),
    ("convert", "holds the newly trained model, not converted"),
    ("site", "holds the newly trained and converted model"),
])
def test_all_interrupted_runs_no_later_step_and_says_what_was_written(tmp_path, capsys, monkeypatch, stop_in, said):
    """Ctrl-C during training keeps the best epoch (train returns normally, marked interrupted);
    `all` must then not convert it and replace the site, and no interruption may claim that nothing
    changed once the model folder was replaced."""
    import build

    steps = []

    def step(name):
        def run(args):
            steps.append(name)
            if name == stop_in and name != "train":
                raise KeyboardInterrupt
            return {"training": {"interrupted": stop_in == "train"}} if name == "train" else None
        return run

    for name in ("train", "convert", "site"):
        monkeypatch.setattr(build, f"run_{name}", step(name))
    code = build.main(["all", "--data", "d", "--model-dir", str(tmp_path / "model"), "--out", str(tmp_path / "dist")])
    err = capsys.readouterr().err.strip()
    assert code == 130 and said in err and "left as it was" in err and "\n" not in err
    assert steps == ["train", "convert", "site"][:["train", "convert", "site"].index(stop_in) + 1]


@pytest.mark.parametrize("interrupted, status", [(True, 130), (False, 0)])
def test_train_interrupted_exits_as_interrupted(tmp_path, monkeypatch, interrupted, status):
    """A script running `train` must be able to tell a run cut short by Ctrl-C from a finished one."""
    import build

    monkeypatch.setattr(build, "run_train", lambda args: {"training": {"interrupted": interrupted}})
    assert build.main(["train", "--data", "d", "--model-dir", str(tmp_path / "model")]) == status


def _comparison_row(load_ms):
    """compare.json with one finished row, loaded in `load_ms` (0: no time a page can take)."""
    row = {"backbone": "a", "val_accuracy": 0.5, "val_loss": 1.0, "test_accuracy": 0.5, "parameters": 1,
           "keras_bytes": 1, "tfjs_weight_bytes": 1, "weights": "none", "epochs_run": 1, "images_seen": 1,
           "browser": {"load_ms": load_ms, "first_inference_ms": 1, "warm_median_ms": 1}}
    return {"rows": {"a": row}, "settings": {}}


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.json", "comparison results not found"),
    (lambda d: (d / "list.json").write_text("[1, 2]") and d / "list.json", "not the compare.json of `build.py compare`"),
    (lambda d: (d / "row.json").write_text('{"rows": {"a": {"backbone": "a"}}}') and d / "row.json",
     "not the compare.json of `build.py compare`"),
    (lambda d: (d / "zero.json").write_text(json.dumps(_comparison_row(load_ms=0))) and d / "zero.json",
     "not the compare.json of `build.py compare`"),
    (lambda d: (d / "empty.json").write_text("{}") and d / "empty.json", "holds no compared backbones"),
])
def test_a_comparison_named_that_is_missing_or_not_one_is_a_one_line_error(tmp_path, capsys, make, message):
    """`site --comparison FILE` names a file: a mistyped path or another JSON file is said, not
    skipped in silence or ended in a traceback."""
    import build
    from conftest import SHIPPED_MODEL

    path = make(tmp_path)
    code = build.main(["site", "--model-dir", str(SHIPPED_MODEL), "--out", str(tmp_path / "dist"), "--comparison", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith(f"error: {path}: {message}") and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "dist").exists()


def test_a_run_ended_by_sigterm_leaves_no_half_written_folder(tmp_path):
    """`timeout`, `kill` or a cancelled job sends SIGTERM: the site being written is removed, the
    earlier one stays, and the exit is Ctrl-C's."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT, SHIPPED_MODEL

    dist = tmp_path / "dist"
    command = [sys.executable, str(ROOT / "build.py"), "site", "--model-dir", str(SHIPPED_MODEL), "--out", str(dist)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    before = _tree(dist)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".dist.new-*/*")):  # the new site is being written
        assert process.poll() is None and time.monotonic() < deadline, "the site was written before it could be stopped"
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]
    assert _tree(dist) == before


def test_the_site_builds_where_the_system_encoding_is_not_utf8(tmp_path):
    """A system whose default encoding is ASCII (LC_ALL=C without Python's UTF-8 mode; Windows has
    another): the language files and pages are read and written as UTF-8 all the same."""
    import os
    import subprocess
    import sys

    from conftest import ROOT, SHIPPED_MODEL

    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "site", "--model-dir", str(SHIPPED_MODEL),
                             "--out", str(tmp_path / "dist")], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "한국어" in (tmp_path / "dist" / "index.html").read_text(encoding="utf-8")


WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from common.atomic import atomic_dir
with atomic_dir({target!r}) as tmp:
    (tmp / "part").write_text("half")
    print(tmp, flush=True)
    time.sleep(600)
"""


def test_what_a_killed_run_left_is_removed_by_the_next_but_a_running_writer_is_kept(tmp_path):
    """SIGKILL (the out-of-memory killer, `kill -9`) unwinds nothing, so a run's temporary folder stays
    beside its output. The next run into the same output removes it, and not the folder of a run
    still writing there."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    target = tmp_path / "out"

    def writer():
        """The process, and the temporary folder it writes."""
        process = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), target=str(target))],
                                   stdout=subprocess.PIPE, text=True)
        folder = Path(process.stdout.readline().strip())
        assert folder.parent == tmp_path and (folder / "part").is_file()
        return process, folder

    (killed, killed_folder), (running, running_folder) = writer(), writer()
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        leftovers = sorted(tmp_path.glob(".out.new-*"))
        assert len(leftovers) == 2
        for folder in leftovers:  # both past the age at which a folder may still be awaiting its lock
            os.utime(folder, (0, 0))
        with atomic_dir(target) as tmp:
            (tmp / "done").write_text("whole")
        assert sorted(tmp_path.glob(".out.new-*")) == [running_folder] and not killed_folder.exists()
        assert (target / "done").is_file()
        young = tmp_path / ".out.new-young"
        young.mkdir()  # a writer that has just made its folder, not yet locked it
        with atomic_dir(target, marker="done") as tmp:
            (tmp / "done").write_text("whole again")
        assert young.is_dir() and running_folder.is_dir()
    finally:
        running.kill()
        running.wait(timeout=30)


@pytest.mark.parametrize("command, output", [
    (["train", "--data", "{tmp}/nowhere.csv", "--model-dir", "{out}"], "{out}"),
    (["all", "--data", "{tmp}/nowhere.csv", "--model-dir", "{tmp}/model", "--out", "{out}"], "{out}"),
    (["face-backbone", "--source", "{tmp}/nowhere.json", "--data", "{tmp}/nowhere.csv", "--out", "{out}/x.h5"],
     "{out}/x.h5"),
    (["compare", "--data", "{tmp}/nowhere.csv", "--out", "{out}"], "{out}/compare.json"),
])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, command, output):
    """An output under a file is refused first, naming the user's path and why (it was found only
    when the result was written, after the training, and named a temporary folder). The data, which
    does not exist, is never read."""
    import build

    (tmp_path / "file.txt").write_text("not a folder")
    out = tmp_path / "file.txt" / "out"
    assert build.main([arg.format(tmp=tmp_path, out=out) for arg in command]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {output.format(out=out)}: cannot be written: {tmp_path / 'file.txt'} is a file, not a folder"


def test_a_model_folder_that_cannot_be_replaced_is_refused_before_converting(tiny_build, tmp_path, monkeypatch):
    """On a read-only file system (simulated: no folder can be made beside the model's), convert
    stops before it fits or converts anything, and the model folder is as it was."""
    import common.atomic
    from convert import export

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_build["model_dir"], model_dir)
    before = _tree(model_dir)
    real_mkdtemp = common.atomic.tempfile.mkdtemp

    def read_only(prefix="", dir=None, **kwargs):
        if ".probe-" in prefix:
            raise OSError(30, "Read-only file system")
        return real_mkdtemp(prefix=prefix, dir=dir, **kwargs)

    monkeypatch.setattr(common.atomic.tempfile, "mkdtemp", read_only)
    monkeypatch.setattr(export, "shipped_network", lambda *a, **k: pytest.fail("converted before the check"))
    with pytest.raises(FacemoodError, match=f"^{model_dir}: cannot be written: {tmp_path}: Read-only file system$"):
        export.convert(model_dir, progress=False)
    assert _tree(model_dir) == before


@pytest.mark.parametrize("damage, message", [
    (lambda m: m.pop("architecture"), "has no valid architecture.backbone"),
    (lambda m: m.update(architecture=5), "has no valid architecture.backbone"),
    (lambda m: m.pop("input"), "has no valid input.size"),
    (lambda m: m["crop"].update(margin="x"), "has no valid crop.margin"),
    (lambda m: m["labels"].__setitem__(1, m["labels"][0]), "lists a label twice"),
    (lambda m: m.pop("training"), "has no valid training.config"),
    (lambda m: m["training"]["data"].pop("counts"), "has no valid training.data.counts.train"),
])
def test_a_damaged_model_description_is_one_line_in_every_step(tmp_path, capsys, damage, message):
    """A metadata.json missing what every step reads is refused in one line by site and convert
    alike (they ended in a KeyError or TypeError traceback)."""
    import build
    from conftest import SHIPPED_MODEL

    model_dir = shutil.copytree(SHIPPED_MODEL, tmp_path / "model")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    damage(metadata)
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    for command in (["site", "--model-dir", str(model_dir), "--out", str(tmp_path / "dist")],
                    ["convert", "--model-dir", str(model_dir), "--quiet"]):
        assert build.main(command) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == f"error: {model_dir}: {message.join(['metadata.json ', ''])}", command
    assert not (tmp_path / "dist").exists()


def test_evaluate_refuses_shards_that_differ_from_the_converted_ones(tiny_build, tmp_path):
    """The same bytes changed in a shard that site refuses to publish are refused by evaluate too,
    which would otherwise report on weights the site never ships."""
    from convert.evaluate import evaluate

    model_dir = shutil.copytree(tiny_build["model_dir"], tmp_path / "model")
    shard = next((model_dir / "tfjs").glob("*.bin"))
    data = bytearray(shard.read_bytes())
    data[100:104] = bytes(4 - i for i in range(4))
    shard.write_bytes(bytes(data))
    with pytest.raises(FacemoodError, match="does not match the SHA-256 recorded at conversion"):
        evaluate(model_dir, tiny_build["data"], progress=False)
    assert not (model_dir / "report").exists()


def test_compare_without_a_backbone_is_refused(tmp_path, capsys):
    """--backbones that names none would have written an empty comparison over earlier results."""
    import build

    assert build.main(["compare", "--data", str(tmp_path / "nowhere.csv"), "--backbones", ", ,",
                       "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: --backbones: no backbone given"
    assert not (tmp_path / "out").exists()
