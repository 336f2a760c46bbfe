"""Each benchmark records the command that produced its results, with every option it was given."""
import argparse
import importlib
from pathlib import Path

import pytest

from bench.cli import recorded_command


def _parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, default=Path("models/default"))
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--redo", action="store_true")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=True)
    return parser


def test_defaults_are_left_out_and_the_data_set_is_named_by_its_file():
    parser = _parser()
    args = parser.parse_args(["--data", "/somewhere/fer2013.csv.gz"])
    assert recorded_command("python -m bench.x", parser, args) == "python -m bench.x --data fer2013.csv.gz"


def test_every_option_given_is_recorded():
    parser = _parser()
    args = parser.parse_args(["--data", "d/fer.csv", "--model-dir", "runs/r40", "--count", "50", "--weights", "0.2",
                              "0.3", "--redo", "--no-isolate"])
    assert recorded_command("python -m bench.x", parser, args) == (
        "python -m bench.x --data fer.csv --model-dir runs/r40 --count 50 --weights 0.2 0.3 --redo --no-isolate")


def test_validation_face_benchmarks_record_their_model_and_seed():
    from bench.crop_margin import validation_face_args

    args = validation_face_args(["--data", "/x/fer2013.csv.gz", "--model-dir", "runs/r40", "--seed", "3"],
                                "doc", "faces", "bench.tilt")
    assert args.command == "python -m bench.tilt --data fer2013.csv.gz --model-dir runs/r40 --seed 3"


def test_compare_records_the_settings_that_decide_whether_rows_are_reused():
    from bench.compare import CompareSettings, _command_args

    args = _command_args(CompareSettings(data=Path("/x/fer.csv"), weights="none", seed=3))
    assert "--weights none" in args and "--seed 3" in args
    assert not [a for a in _command_args(CompareSettings(data=Path("fer.csv"))) if a.startswith(("--weights", "--seed"))]


@pytest.mark.parametrize("module", ["crop_margin", "tilt", "detector_scale", "exposure", "smoothing", "parity"])
def test_a_benchmark_given_no_model_or_no_data_says_so_in_one_line(module, tmp_path, capsys):
    main = importlib.import_module(f"bench.{module}").main
    args = ["--model-dir", str(tmp_path)] + ([] if module == "parity" else ["--data", str(tmp_path / "none.csv")])
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(tmp_path) in err[0]


def test_a_benchmark_that_reads_the_models_truth_refuses_other_data(tiny_build, tmp_path, capsys):
    """Its figures look up each face's label by class index: another data set's would be wrong silently."""
    import faces
    from bench.crop_margin import main

    other = faces.write_class_folders(tmp_path / "other", per_class=9)
    assert main(["--data", str(other), "--model-dir", str(tiny_build["model_dir"]), "--count", "5"]) == 1
    assert "not the data this model was trained on" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["--data", str(other), "--count", "-1"])
    assert usage.value.code == 2 and "--count must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["crop_margin", "tilt", "detector_scale", "exposure", "smoothing", "parity"])
def test_a_benchmark_writes_where_told_and_checks_it_first(module, tmp_path, capsys):
    """--out names the folder for the results (the committed ones stay as they are), and one that
    cannot be written is said before any measuring."""
    main = importlib.import_module(f"bench.{module}").main
    taken = tmp_path / "a-file"
    taken.write_text("")
    data = [] if module == "parity" else ["--data", str(tmp_path / "none.csv")]
    assert main([*data, "--out", str(taken)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {taken / (module + '.json')}: cannot be written: {taken} is a file, not a folder"]
