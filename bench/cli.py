"""The command-line shape the benchmarks share: how they run, check their model folder and write
their results."""
import sys
from pathlib import Path

from common.atomic import atomic_write_bytes, atomic_write_json
from common.errors import FacemoodError


def run_and_print(prog, argv, parse_args, run):
    """Parse `argv` (sys.argv[1:] when None), run with the command line recorded in the report and
    print its Markdown table; a FacemoodError becomes one line on stderr and exit status 1."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        report = run(args, command=" ".join([prog, *argv]))
    except FacemoodError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(report["markdown"])
    return 0


def check_model_dir(parser, model_dir):
    """A usage error (exit status 2) unless `model_dir` holds a model's metadata.json."""
    if not (Path(model_dir) / "metadata.json").is_file():
        parser.error(f"{model_dir}: not a model folder (no metadata.json)")


def save_results(folder, name, report, markdown):
    """`folder`/NAME.json (the report, every figure) and NAME.md (its table), each written atomically."""
    atomic_write_json(Path(folder) / f"{name}.json", report)
    atomic_write_bytes(Path(folder) / f"{name}.md", markdown.encode())
