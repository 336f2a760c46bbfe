"""Train an expression classifier and write it with everything the later steps need.

Story: load data -> build model -> fit with augmentation, class weights and early stopping ->
evaluate on val/test -> write model.h5, metadata.json, metrics.json and plots, atomically.
"""
import hashlib
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from common.atomic import atomic_dir, atomic_write_json, check_replaceable, read_json
from common import metadata as metadata_format
from common.errors import FacemoodError
from common.metadata import MODEL_MARKER, load_metadata
from train.config import DEFAULT_SEED, TrainConfig, check_numbers
from train.data import load_dataset
from train.distillation import TemperatureDistillation, averaged, label_accuracy, mixed_targets, packed_targets
from train.ferplus import soft_targets
from train.keras_env import keras, tf
from train.metrics import classification_report
from train.model import PREPROCESSING, build_model
from train.plots import plot_confusion, plot_learning_curves

MODEL_FILE = "model.h5"


def train(data_path, out_dir, config=TrainConfig(), progress=True, resume=False, callbacks=(), dataset=None):
    """Train on `data_path` and write the model folder `out_dir`. Returns the metadata dict.

    `dataset`: the data of `data_path` already loaded (comparisons train several models on one).
    `resume` starts from the model already in `out_dir` (its architecture and crop margin win over
    `config`, and what conversion chose for the page is kept: `_keep_page_choices`).
    Ctrl-C after at least one epoch keeps the best epoch so far: it is written like a finished
    run, marked as interrupted, and `--resume` continues from it.
    """
    started = time.time()
    check_replaceable(Path(out_dir), MODEL_MARKER)  # now, not after hours of training
    resumed_from, earlier_runs, previous = None, [], None
    if resume:
        model, previous = load_trained(out_dir)
        arch = previous["architecture"]
        # The network is not built again: its form, its dropout and where its weights began are
        # the run's it continues, whatever the options say, and are recorded as such.
        config = replace(config, backbone=arch["backbone"], alpha=arch["alpha"], input_size=arch["input_size"],
                         blocks=arch.get("blocks", 0), image_size=previous["input"]["size"],
                         dropout=_dropout_of(model, config.dropout), crop_margin=previous["crop"]["margin"],
                         weights=previous["training"]["config"].get("weights", arch.get("weights", "none")))
        resumed_from = hashlib.sha256((Path(out_dir) / MODEL_FILE).read_bytes()).hexdigest()
        earlier_runs = _earlier_runs(out_dir)
    config = replace(config, seed=_seed_for(config, previous))
    if config.low_res > 0 and config.image_size <= LOW_RES_SMALLEST:
        raise FacemoodError(f"--low-res shrinks crops to a side of {LOW_RES_SMALLEST} pixels and more: it needs an "
                            f"--image-size above {LOW_RES_SMALLEST}, not {config.image_size}")
    keras.utils.set_random_seed(config.seed)
    if dataset is None:
        dataset = load_dataset(data_path, image_size=config.image_size, seed=config.seed, progress=progress)
    _report_skipped(dataset)
    labels = dataset.labels
    if resume:
        _check_held_out(previous, dataset, config.seed, f"{out_dir}: cannot resume: the model")
        if previous["labels"] != labels:
            raise FacemoodError(f"{out_dir}: cannot resume: the model's classes {previous['labels']} differ "
                                f"from the data's {labels}")
    else:
        model = build_model(len(labels), config.image_size, config.input_size, config.backbone,
                            config.alpha, config.weights, config.dropout, blocks=config.blocks)
    steps = _steps_per_epoch(len(dataset.train), config)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps * config.epochs,
                                                      alpha=0.02)
    teacher, teacher_record = _load_teacher(config, labels, dataset)
    model.compile(optimizer=keras.optimizers.Adam(schedule), **_loss_and_metrics(config, len(labels), teacher))
    class_weights = _class_weights(dataset.train.labels, len(labels))
    targets = (soft_targets(dataset, config.ferplus, config.ferplus_weight)["train"] if config.ferplus
               else np.eye(len(labels), dtype=np.float32)[dataset.train.labels])
    train_ds = _training_pipeline(dataset.train, targets, class_weights, config, teacher)
    val_ds = _eval_pipeline(dataset.val, len(labels))
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience,
                                         restore_best_weights=True, verbose=0)
    verbose = 1 if progress and sys.stderr.isatty() else (2 if progress else 0)
    interrupted = False
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, steps_per_epoch=steps,
                  callbacks=[stop, *callbacks], verbose=verbose)
    except KeyboardInterrupt:
        if stop.best_weights is None:  # not one epoch finished: nothing worth keeping
            raise
        model.set_weights(stop.best_weights)
        interrupted = True
    history = model.history
    best_epoch = int(np.argmax(history.history["val_accuracy"])) + 1

    reports = {split: classification_report(predict(model, dataset.split(split).images), dataset.split(split).labels,
                                            labels)
               for split in ("val", "test") if len(dataset.split(split))}
    metadata = _metadata(dataset, model, config, reports, class_weights, history, best_epoch,
                         time.time() - started)
    metadata["training"].update(interrupted=interrupted, resumed_from_sha256=resumed_from, teacher=teacher_record)
    if resume:  # the stages before this one, so the model's whole training stays on record
        metadata["training"]["resumed_from"] = previous["training"]
        _keep_page_choices(previous, metadata)
    _write_model_folder(out_dir, model, metadata, reports, history.history, earlier_runs)
    if interrupted:
        print(f"interrupted after {len(history.history['loss'])} epoch(s); the best (epoch {best_epoch}) was "
              f"saved to {out_dir}. Continue with: build.py train --data {data_path} --model-dir {out_dir} "
              f"--resume", file=sys.stderr)
    return metadata


def _write_model_folder(out_dir, model, metadata, reports, history, earlier_runs=()):
    """model.h5, metadata.json, metrics.json and the plots, swapped in as one folder.
    `earlier_runs`: the epoch histories of the runs a resumed run continued, oldest first."""
    with atomic_dir(out_dir, marker=MODEL_MARKER) as tmp:
        model.save(tmp / MODEL_FILE, include_optimizer=False)
        atomic_write_json(tmp / "metadata.json", metadata)
        metrics = {"float": reports, "history": _rounded(history)}
        if earlier_runs:
            metrics["earlier_runs_history"] = list(earlier_runs)
        atomic_write_json(tmp / "metrics.json", metrics)
        plot_learning_curves(history, tmp / "learning_curves.png", earlier_runs)
        headline = "test" if "test" in reports else "val"
        plot_confusion(reports[headline]["confusion"], metadata["labels"], tmp / "confusion_matrix.png",
                       f"Confusion matrix ({headline} split, float model)")


def _dropout_of(model, default):
    """The rate of the network's dropout layer (build_model names it), or `default` without one."""
    try:
        return float(model.get_layer("dropout").rate)
    except ValueError:
        return default


def _earlier_runs(model_dir):
    """Epoch histories of the model in `model_dir` and of the runs it continued, oldest first."""
    path = Path(model_dir) / "metrics.json"
    if not path.exists():
        return []
    metrics = read_json(path, "model metrics")
    return [*metrics.get("earlier_runs_history", []), metrics["history"]] if "history" in metrics else []


def _seed_for(config, previous=None):
    """The seed given, else the resumed model's `previous` one (its split must not change), else 0."""
    if config.seed is not None:
        return config.seed
    return previous["training"]["config"].get("seed", DEFAULT_SEED) if previous else DEFAULT_SEED


def _check_held_out(trained, dataset, seed, who):
    """Refuse a model (`trained`: its metadata) trained on other data than `dataset`, or on another
    seeded split of it: its training images may be `dataset`'s validation or test images.
    `who` starts the message, e.g. "models/x: the teacher"."""
    recorded = trained["training"]["data"].get("sha256") or "none"
    if not dataset.is_named_by(recorded):
        raise FacemoodError(f"{who} was trained on other data (sha256 {recorded[:12]}... != "
                            f"{dataset.sha256[:12]}...), so this data's validation/test images would not "
                            f"be held out from it")
    recorded_seed = trained["training"]["config"].get("seed", DEFAULT_SEED)
    if dataset.seeded_split and recorded_seed != seed:
        raise FacemoodError(f"{who} was trained with --seed {recorded_seed}, which splits this data differently "
                            f"from --seed {seed}, so this data's validation/test images would not be held out "
                            f"from it")


def predict(model, images, batch_size=256):
    """Class probabilities for uint8 grey images (n, size, size)."""
    x = images[..., None].astype(np.float32)
    return model.predict(x, batch_size=batch_size, verbose=0)


def _steps_per_epoch(n_train, config):
    steps = max(1, int(np.ceil(n_train / config.batch_size)))
    return min(steps, config.max_steps) if config.max_steps else steps


def _class_weights(train_labels, num_classes):
    """Square root of 'balanced' weights: rare classes (disgust) count more, without swamping."""
    counts = np.bincount(train_labels, minlength=num_classes).astype(float)
    balanced = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return {i: float(np.sqrt(w)) for i, w in enumerate(balanced)}


def _augmenter(seed, strength):
    """Changes a face photo can plausibly undergo: mirror, small tilt, zoom, shift, light.

    At strength 1: up to about 15 degrees, 12 % zoom, 8 % shift, 20 % brightness, 30 % contrast.
    None at strength 0: no change at all, not even the mirror, as `--augment 0` promises.
    """
    if strength == 0:
        return None
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.04 * strength, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomZoom(0.12 * strength, fill_mode="reflect", seed=seed + 2),
        keras.layers.RandomTranslation(0.08 * strength, 0.08 * strength, fill_mode="reflect", seed=seed + 3),
        keras.layers.RandomBrightness(0.2 * strength, value_range=(0, 255), seed=seed + 4),
        keras.layers.RandomContrast(0.3 * strength, seed=seed + 5),
    ], name="augment")


def _as_float_augmented(augment):
    """The batch map that turns uint8 images into float32 ones, augmented unless `augment` is None."""
    def prepare(x, y, w):
        x = tf.cast(x, tf.float32)
        return (x if augment is None else tf.clip_by_value(augment(x, training=True), 0, 255)), y, w

    return prepare


def _loss_and_metrics(config, num_classes, teacher):
    """Cross-entropy with the target, or with a teacher above temperature 1 the distillation loss."""
    if teacher is not None and config.teacher_temperature != 1:
        return {"loss": TemperatureDistillation(num_classes, config.teacher_weight, config.teacher_temperature,
                                                config.label_smoothing),
                "metrics": [label_accuracy(num_classes)]}
    return {"loss": keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            "metrics": ["accuracy"]}


def _load_teacher(config, labels, dataset=None):
    """The teacher model of `config` (None without one) and what the metadata records of it. Several
    folders, separated by commas, make one teacher that predicts the mean of their predictions.
    With `dataset` (the student's data) a teacher trained on other data or another seeded split of
    it is refused: it may have learnt the student's validation images."""
    if not config.teacher:
        return None, None
    check_numbers(config, "teacher_weight", "teacher_temperature")
    models, records = [], []
    for folder in _teacher_folders(config.teacher):
        model, metadata = load_trained(folder)
        if metadata["labels"] != labels:
            raise FacemoodError(f"{folder}: the teacher's classes {metadata['labels']} differ from the data's {labels}")
        if metadata["input"]["size"] != config.image_size:
            raise FacemoodError(f"{folder}: the teacher takes {metadata['input']['size']} px crops, not "
                                f"{config.image_size} px")
        if dataset is not None:
            _check_held_out(metadata, dataset, _seed_for(config), f"{folder}: the teacher")
        models.append(model)
        records.append({"name": Path(folder).name,
                        "sha256": hashlib.sha256((Path(folder) / MODEL_FILE).read_bytes()).hexdigest(),
                        "architecture": metadata["architecture"], "metrics": metadata.get("metrics", {}).get("float")})
    record = records[0] if len(records) == 1 else {"name": " + ".join(r["name"] for r in records), "members": records}
    record = {**record, "weight": config.teacher_weight, "temperature": config.teacher_temperature}
    return (models[0] if len(models) == 1 else averaged(models)), record


def _teacher_folders(teacher):
    return [folder for folder in teacher.split(",") if folder]


def _training_pipeline(split, targets, class_weights, config, teacher=None):
    """Augmented batches of (image, target distribution, weight of the image's labelled class)."""
    check_numbers(config, "mixup", "augment", "low_res")
    config = replace(config, seed=_seed_for(config))
    augment = _augmenter(config.seed, config.augment)
    weights = np.asarray([class_weights[i] for i in range(len(class_weights))], np.float32)[split.labels]
    ds = tf.data.Dataset.from_tensor_slices((split.images[..., None], targets, weights))
    ds = ds.shuffle(len(split), seed=config.seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(config.batch_size, drop_remainder=False)
    ds = ds.map(_as_float_augmented(augment), num_parallel_calls=tf.data.AUTOTUNE)
    if config.low_res > 0:
        ds = ds.map(_low_resolution(config.low_res, config.image_size, config.seed), num_parallel_calls=tf.data.AUTOTUNE)
    if teacher is not None:  # before mixup, which blends the distilled targets like the others
        ds = ds.map(mixed_targets(teacher, config.teacher_weight) if config.teacher_temperature == 1
                    else packed_targets(teacher))
    if config.mixup > 0:
        ds = ds.map(_mixup(config.mixup, config.seed), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


LOW_RES_SMALLEST = 12  # the smallest side --low-res shrinks a crop to


def _low_resolution(share, size, seed):
    """`share` of a batch's images scaled down to a side drawn per batch from LOW_RES_SMALLEST to `size` pixels
    (area averaging, as a browser shrinks a photo) and back up (bicubic, as the page enlarges a
    small face's crop): the blur of a face that covered few pixels of its photo."""
    def shrink(x, y, w):
        side = tf.random.uniform([], LOW_RES_SMALLEST, size, dtype=tf.int32, seed=seed + 10)
        blurred = tf.image.resize(tf.image.resize(x, [side, side], method="area"), [size, size], method="bicubic")
        picked = tf.random.uniform([tf.shape(x)[0], 1, 1, 1], seed=seed + 11) < share
        return tf.where(picked, tf.clip_by_value(blurred, 0, 255), x), y, w

    return shrink


def _mixup(strength, seed):
    """Blend each image of a batch with another one of it (mixup): image, target and weight by the
    same share, drawn per image from Beta(strength, strength), so most blends stay close to one face."""
    def mix(x, y, w):
        n = tf.shape(x)[0]
        a = tf.random.gamma([n], strength, seed=seed + 7)
        share = a / (a + tf.random.gamma([n], strength, seed=seed + 8))
        partner = tf.random.shuffle(tf.range(n), seed=seed + 9)
        blend = lambda v, other: share[:, None] * v + (1 - share[:, None]) * other  # noqa: E731
        x_mixed = tf.reshape(blend(tf.reshape(x, [n, -1]), tf.reshape(tf.gather(x, partner), [n, -1])), tf.shape(x))
        return x_mixed, blend(y, tf.gather(y, partner)), blend(w[:, None], tf.gather(w, partner)[:, None])[:, 0]

    return mix


def _eval_pipeline(split, num_classes):
    ds = tf.data.Dataset.from_tensor_slices((split.images[..., None], split.labels))
    return ds.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, num_classes))).prefetch(2)


def _report_skipped(dataset):
    if dataset.skipped:
        print(f"skipped {len(dataset.skipped)} unreadable image(s), e.g. {dataset.skipped[0][0]}: "
              f"{dataset.skipped[0][1]}", file=sys.stderr)


def _metadata(dataset, model, config, reports, class_weights, history, best_epoch, seconds):
    return {
        "format": metadata_format.FORMAT,
        "format_version": metadata_format.VERSION,
        "labels": dataset.labels,
        "input": {
            "size": config.image_size,
            "channels": 1,
            "color": "grey",
            # How the browser turns RGB into grey: ITU-R BT.601 luma, as Pillow's convert("L").
            "luma_weights": [0.299, 0.587, 0.114],
            "range": [0, 255],
            "normalization": f"inside the model ({PREPROCESSING.get(config.backbone, 'tf')} mode); feed raw 0-255 grey",
        },
        # FER2013 faces are upright web crops, not rotated to level the eyes: the browser does the same.
        "crop": {"margin": config.crop_margin, "square": True, "alignment": "none"},
        "architecture": {"backbone": config.backbone, "alpha": config.alpha, "input_size": config.input_size,
                         "blocks": config.blocks,
                         "weights": config.weights if config.weights in ("none", "imagenet") else "file",
                         "parameters": int(model.count_params()), "keras_file": MODEL_FILE},
        "training": {
            # File names only: where the data lay on the training machine says nothing about the model.
            "config": {**asdict(config), "ferplus": Path(config.ferplus).name if config.ferplus else "",
                       "teacher": ",".join(Path(f).name for f in _teacher_folders(config.teacher)),
                       "weights": (config.weights if config.weights in ("none", "imagenet")
                                   else Path(config.weights).name)},
            "data": {"kind": dataset.kind, "name": Path(dataset.source).name, "sha256": dataset.sha256,
                     "counts": dataset.counts(), "skipped_images": len(dataset.skipped),
                     "ferplus_votes": Path(config.ferplus).name if config.ferplus else None},
            "class_weights": {dataset.labels[i]: round(w, 4) for i, w in class_weights.items()},
            "epochs_run": len(history.history["loss"]),
            "best_epoch": best_epoch,
            "seconds": round(seconds, 1),
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        },
        "metrics": {"float": {split: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "count": r["count"]}
                              for split, r in reports.items()}},
        # How the page prepares each crop; `build.py convert --standardize off` (or on) changes it.
        "inference": {"standardize": dataset.grey_statistics()},
    }


def _keep_page_choices(previous, metadata):
    """A resumed model keeps what conversion chose for the page (flipping, smoothing, standardizing
    or not, the shards' weight types; the crop margin is kept with the architecture). A class bias or
    an unsure-flip margin was fitted to the earlier weights: it goes, and the user is told."""
    before, now = previous.get("inference", {}), metadata["inference"]
    for key in ("test_time_flip", "smoothing"):
        if key in before:
            now[key] = before[key]
    if "standardize" not in before:
        now.pop("standardize", None)
    shards = previous.get("tfjs") or previous.get("conversion") or {}
    kept = {key: shards[key] for key in ("quantize", "float16_kinds") if key in shards}
    if kept:
        metadata["conversion"] = kept  # read by the next `convert`, which writes "tfjs" in its place
    fitted = [(name, option) for key, name, option in (
        ("class_bias", "class bias", f"--min-recall {before.get('class_bias', {}).get('min_recall')}"),
        ("flip_when_unsure", "unsure-flip margin", "--test-time-flip unsure")) if key in before]
    if fitted:
        print(f"note: the {' and the '.join(name for name, _ in fitted)} fitted to the earlier weights "
              f"{'were' if len(fitted) > 1 else 'was'} dropped; fit again with `build.py convert --data DATA "
              f"{' '.join(option for _, option in fitted)}`", file=sys.stderr)


def _rounded(history):
    return {k: [round(float(v), 5) for v in values] for k, values in history.items()}


def load_trained(model_dir):
    """The Keras model and metadata of a model folder, with clear errors when they do not fit."""
    model_dir = Path(model_dir)
    metadata = load_metadata(model_dir)
    path = model_dir / MODEL_FILE
    if not path.is_file():
        raise FacemoodError(f"{path}: model file not found (run `build.py train` first)")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # h5py/keras raise many kinds for a damaged file
        raise FacemoodError(f"{path}: cannot load model ({str(e).splitlines()[0]})") from None
    outputs = model.outputs[0].shape[-1]
    if outputs != len(metadata["labels"]):
        raise FacemoodError(f"{path}: model has {outputs} outputs but metadata lists {len(metadata['labels'])} labels")
    return model, metadata

