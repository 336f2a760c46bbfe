"""`train --teacher`: each training target moves toward a trained model's prediction for the very
image the student sees, and the teacher is recorded."""
import hashlib
import json

import numpy as np
import pytest

import faces
from common.errors import FacemoodError
from conftest import run_build
from train.data import load_dataset


def _lopsided_teacher():
    """Softmax over 7 classes from the left-minus-right brightness of the image: it answers
    differently for a face and its mirror image, as a real network does."""
    from train.keras_env import keras, tf

    inputs = keras.Input((48, 48, 1))
    halves = keras.layers.Lambda(lambda x: tf.stack([tf.reduce_mean(x[:, :, :24], [1, 2, 3]),
                                                     tf.reduce_mean(x[:, :, 24:], [1, 2, 3])], axis=1))(inputs)
    dense = keras.layers.Dense(7, activation="softmax")
    outputs = dense(halves)
    dense.set_weights([np.array([np.linspace(-0.05, 0.05, 7), np.linspace(0.05, -0.05, 7)], np.float32),
                       np.zeros(7, np.float32)])
    return keras.Model(inputs, outputs)


def test_targets_move_toward_the_teachers_prediction_for_the_same_image(tmp_path):
    from train.config import TrainConfig
    from train.train import _training_pipeline

    ds = load_dataset(faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=(16, 2, 2)))
    targets = np.eye(7, dtype=np.float32)[ds.train.labels]
    teacher, share = _lopsided_teacher(), 0.4
    config = TrainConfig(batch_size=len(ds.train), teacher_weight=share)  # augmented: mirrored among others
    x, y, _ = (t.numpy() for t in next(iter(_training_pipeline(ds.train, targets, {i: 1.0 for i in range(7)},
                                                                config, teacher))))
    predicted = teacher.predict(x, verbose=0)
    assert np.ptp(predicted, axis=0).max() > 0.01  # the teacher tells these images apart
    own = (y - share * predicted) / (1 - share)  # what is left must be each image's own one-hot target
    assert np.allclose(own.max(axis=1), 1, atol=1e-5) and np.allclose(own.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(np.sort(own, axis=1)[:, :-1], 0, atol=1e-5)
    # The images the augmenter changed (mirrored, tilted, ...) are the ones the teacher was asked about.
    changed = [img for img in x[..., 0] if not any(np.array_equal(img, o) for o in ds.train.images)]
    assert changed, "no image was augmented: the check above would not see the teacher miss a change"


def test_a_teacher_of_other_classes_or_a_bad_share_is_refused(tiny_build):
    from train.config import TrainConfig
    from train.train import _load_teacher

    with pytest.raises(FacemoodError, match="the teacher's classes"):
        _load_teacher(TrainConfig(teacher=str(tiny_build["model_dir"])), ["a", "b", "c"])
    with pytest.raises(FacemoodError, match="--teacher-weight"):
        _load_teacher(TrainConfig(teacher=str(tiny_build["model_dir"]), teacher_weight=0), ["x"])
    with pytest.raises(FacemoodError, match="--teacher-temperature"):
        _load_teacher(TrainConfig(teacher=str(tiny_build["model_dir"]), teacher_temperature=0), ["x"])
    with pytest.raises(FacemoodError, match="metadata"):
        _load_teacher(TrainConfig(teacher="/nonexistent/teacher"), ["x"])


@pytest.mark.parametrize("temperature", [1, 3])
def test_build_train_with_a_teacher_records_it(tmp_path, tiny_build, temperature):
    student = tmp_path / "student"
    run_build("train", "--data", tiny_build["data"], "--model-dir", student, "--teacher", tiny_build["model_dir"],
              "--teacher-weight", 0.3, "--teacher-temperature", temperature, "--epochs", 1, "--max-steps", 2,
              "--batch-size", 16, "--input-size", 48, "--quiet")
    metadata = json.loads((student / "metadata.json").read_text())
    training = metadata["training"]
    teacher = training["teacher"]
    assert teacher["name"] == tiny_build["model_dir"].name and teacher["weight"] == 0.3
    assert teacher["temperature"] == temperature
    assert 0 <= metadata["metrics"]["float"]["val"]["accuracy"] <= 1
    assert teacher["sha256"] == hashlib.sha256((tiny_build["model_dir"] / "model.h5").read_bytes()).hexdigest()
    assert training["config"]["teacher"] == tiny_build["model_dir"].name  # a name, not where it lay


def test_a_temperature_packs_the_teachers_prediction_beside_the_target(tmp_path):
    from train.config import TrainConfig
    from train.train import _training_pipeline

    ds = load_dataset(faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=(16, 2, 2)))
    targets = np.eye(7, dtype=np.float32)[ds.train.labels]
    teacher = _lopsided_teacher()
    config = TrainConfig(batch_size=len(ds.train), augment=0, teacher_temperature=3)
    x, y, _ = (t.numpy() for t in next(iter(_training_pipeline(ds.train, targets, {i: 1.0 for i in range(7)},
                                                                config, teacher))))
    assert y.shape == (len(ds.train), 14)
    assert np.allclose(y[:, 7:], teacher.predict(x, verbose=0), atol=1e-6)
    assert np.allclose(y[:, :7].max(axis=1), 1) and np.allclose(y[:, :7].sum(axis=1), 1)  # the targets, untouched


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_the_temperature_loss_is_hintons():
    from train.distillation import TemperatureDistillation, label_accuracy
    from train.keras_env import tf

    rng = np.random.default_rng(0)
    target = _softmax(rng.normal(size=(5, 7)) * 3)
    teacher = _softmax(rng.normal(size=(5, 7)) * 2)
    student = _softmax(rng.normal(size=(5, 7)) * 2)
    share, temperature, smoothing = 0.4, 3.0, 0.1
    loss = TemperatureDistillation(7, share, temperature, smoothing)
    per_image = loss.call(tf.constant(np.concatenate([target, teacher], 1), tf.float32),
                          tf.constant(student, tf.float32)).numpy()

    smoothed = target * (1 - smoothing) + smoothing / 7
    hard = -(smoothed * np.log(student)).sum(1)
    soft = -(_softmax(np.log(teacher) / temperature) * np.log(_softmax(np.log(student) / temperature))).sum(1)
    assert np.allclose(per_image, (1 - share) * hard + share * temperature ** 2 * soft, rtol=1e-5)
    # The soft term is smallest where the student agrees with the teacher: a student equal to the
    # teacher scores lower than this one on it.
    agreeing = loss.call(tf.constant(np.concatenate([target, teacher], 1), tf.float32),
                         tf.constant(teacher, tf.float32)).numpy()
    assert (agreeing - (1 - share) * -(smoothed * np.log(teacher)).sum(1) < per_image - (1 - share) * hard).all()
    # Validation batches carry the target alone: plain cross-entropy, and accuracy on the target.
    alone = loss.call(tf.constant(target, tf.float32), tf.constant(student, tf.float32)).numpy()
    assert np.allclose(alone, hard, rtol=1e-5)
    packed = tf.constant(np.concatenate([target, teacher], 1), tf.float32)
    accuracy = label_accuracy(7)(packed, tf.constant(student, tf.float32)).numpy()
    assert np.array_equal(accuracy, (target.argmax(1) == student.argmax(1)).astype(np.float32))


def test_several_teachers_teach_the_mean_of_their_predictions(tmp_path, tiny_build):
    import shutil

    from train.distillation import averaged

    lopsided, flat = _lopsided_teacher(), _lopsided_teacher()
    flat.layers[-1].set_weights([np.zeros((2, 7), np.float32), np.linspace(-1, 1, 7).astype(np.float32)])
    x = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 1)).astype(np.float32)
    both = averaged([lopsided, flat])(x).numpy()
    assert np.allclose(both, (lopsided.predict(x, verbose=0) + flat.predict(x, verbose=0)) / 2, atol=1e-6)

    second = tmp_path / "second"
    shutil.copytree(tiny_build["model_dir"], second)
    student = tmp_path / "student"
    run_build("train", "--data", tiny_build["data"], "--model-dir", student, "--teacher",
              f"{tiny_build['model_dir']},{second}", "--epochs", 1, "--max-steps", 2, "--batch-size", 16,
              "--input-size", 48, "--quiet")
    training = json.loads((student / "metadata.json").read_text())["training"]
    assert training["teacher"]["name"] == f"{tiny_build['model_dir'].name} + second"
    assert [m["name"] for m in training["teacher"]["members"]] == [tiny_build["model_dir"].name, "second"]
    assert training["teacher"]["weight"] == 0.5
    assert training["config"]["teacher"] == f"{tiny_build['model_dir'].name},second"  # names, not where they lay
