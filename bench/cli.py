"""The command-line shape the benchmarks share: how they run, check their model folder and write
their results."""
import argparse
import functools
import sys
from pathlib import Path

from common.atomic import atomic_write_bytes, atomic_write_json
from common.errors import FacemoodError


def one_line_errors(main):
    """A benchmark's `main(argv)` whose FacemoodError (data of another model, a folder that holds
    no model) is one line on stderr and exit status 1, as build.py's are, not a traceback."""
    @functools.wraps(main)
    def guarded(argv=None):
        try:
            return main(argv) or 0
        except FacemoodError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return guarded


def run_and_print(prog, argv, parse_args, run):
    """Parse `argv` (sys.argv[1:] when None), run with the command line recorded in the report and
    print its Markdown table; a FacemoodError becomes one line on stderr and exit status 1."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)

    @one_line_errors
    def run_and_show(_):
        print(run(args, command=" ".join([prog, *argv]))["markdown"])

    return run_and_show(argv)


def check_model_dir(parser, model_dir):
    """A usage error (exit status 2) unless `model_dir` holds a model's metadata.json."""
    if not (Path(model_dir) / "metadata.json").is_file():
        parser.error(f"{model_dir}: not a model folder (no metadata.json)")


def save_results(folder, name, report, markdown):
    """`folder`/NAME.json (the report, every figure) and NAME.md (its table), each written atomically."""
    atomic_write_json(Path(folder) / f"{name}.json", report)
    atomic_write_bytes(Path(folder) / f"{name}.md", markdown.encode())


def recorded_command(prog, parser, args, names_only=("data",)):
    """The command line that gives these results, as the report records it: every option set to
    other than its default. The paths in `names_only` (the data set) are given by file name: the
    same file lies elsewhere on another machine."""
    parts = [prog]
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = next(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse.BooleanOptionalAction):  # its flags: --name and --no-name
            parts.append(flag if value else f"--no-{flag[2:]}")
        elif action.nargs == 0:  # a switch
            parts.append(flag)
        else:
            values = value if isinstance(value, (list, tuple)) else [value]
            parts += [flag, *(Path(v).name if action.dest in names_only else str(v) for v in values)]
    return " ".join(parts)
