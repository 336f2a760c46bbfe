"""FER+ votes as soft targets: aligned with FER2013's rows, mixed by weight, and refused when they do not fit."""
import json

import numpy as np
import pytest

import faces
from common.errors import FacemoodError
from conftest import run_build
from train.data import load_dataset
from train.ferplus import soft_targets


@pytest.fixture
def fer(tmp_path):
    return faces.write_fer_csv(tmp_path / "fer.csv", rows_per_usage=(9, 3, 6))


def test_targets_mix_votes_and_labels_by_weight(tmp_path, fer):
    votes = faces.write_ferplus_csv(tmp_path / "votes.csv", fer, not_a_face_rows=(1,))
    ds = load_dataset(fer)
    targets = soft_targets(ds, votes, 0.5)
    for split in ("train", "val", "test"):
        t, labels = targets[split], ds.split(split).labels
        assert t.shape == (len(labels), 7) and np.allclose(t.sum(axis=1), 1)
        assert (np.argmax(t, axis=1) == labels).all()
    neutral = 6
    first = targets["train"][0]  # label angry: 0.5 one-hot + 0.5 * (0.7 angry, 0.3 neutral)
    assert first[ds.train.labels[0]] == pytest.approx(0.85) and first[neutral] == pytest.approx(0.15)
    # A row whose votes are all "not a face" keeps only its FER2013 label.
    assert targets["train"][1].tolist() == np.eye(7)[ds.train.labels[1]].tolist()
    # Weight 0 is plain one-hot; weight 1 is the votes alone.
    assert np.array_equal(soft_targets(ds, votes, 0.0)["val"], np.eye(7, dtype=np.float32)[ds.val.labels])
    assert soft_targets(ds, votes, 1.0)["test"][0][neutral] == pytest.approx(0.3)


def test_the_votes_of_rows_that_rate_another_image_are_left_out(tmp_path):
    """Rows 5274 and 33200 of fer2013new.csv rate the image of a later row that took their file name:
    their votes say nothing of their own image."""
    from train.ferplus import read_vote_distributions

    path = tmp_path / "votes.csv"
    row = "Training,fer.png,3,4,0,0,0,0,3,0,0,0"  # neutral 3, happiness 4, fear 3
    path.write_text("\n".join([faces.FERPLUS_HEADER] + [row] * 5276) + "\n")
    shares = read_vote_distributions(path)["train"]
    assert np.isnan(shares[5274]).all()
    assert shares[5273].tolist() == shares[5275].tolist() and shares[5273].sum() == pytest.approx(1)


def test_rows_mostly_voted_outside_the_seven_classes_keep_only_their_label(tmp_path):
    """Contempt, "unknown" and "not a face" votes count towards a row's total: a row whose seven
    classes hold less than half its votes is not made into a confident target from its few."""
    from train.ferplus import read_vote_distributions

    path = tmp_path / "votes.csv"
    rows = ["Training,a.png,1,0,0,0,0,0,0,0,8,1",  # neutral 1, contempt 8, unknown 1: left out
            "Training,b.png,0,0,0,0,0,2,0,0,8,0",  # disgust 2, contempt 8: left out
            "Training,c.png,0,6,0,0,0,0,0,0,4,0",  # happiness 6, contempt 4: kept, all happiness
            "Training,d.png,0,5,0,0,0,0,0,0,0,5"]  # happiness 5, not a face 5: half, kept
    path.write_text("\n".join([faces.FERPLUS_HEADER] + rows) + "\n")
    shares = read_vote_distributions(path)["train"]
    assert np.isnan(shares[0]).all() and np.isnan(shares[1]).all()
    assert shares[2].tolist() == shares[3].tolist() == np.eye(7)[3].tolist()  # happy, in FER2013's order


@pytest.mark.parametrize("make, message", [
    (lambda p, fer: p.write_text(faces.FERPLUS_HEADER + "\n"), "0 train rows, but the data has 9"),
    (lambda p, fer: faces.write_ferplus_csv(p, fer, shift=1), "do not line up"),
    (lambda p, fer: p.write_text("Usage,neutral\nTraining,3\n"), "no column 'anger'"),
    (lambda p, fer: p.write_text(faces.FERPLUS_HEADER + "\nTraining,x,1,2,3,a,0,0,0,0,0,0\n"), "votes must be numbers"),
    (lambda p, fer: None, "does not exist"),
])
def test_votes_that_do_not_fit_are_refused(tmp_path, fer, make, message):
    votes = tmp_path / "votes.csv"
    make(votes, fer)
    with pytest.raises(FacemoodError, match=message):
        soft_targets(load_dataset(fer), votes, 0.5)


def test_only_fer2013_csv_data_takes_votes(tmp_path, fer):
    folder = faces.write_class_folders(tmp_path / "faces", per_class=4)
    with pytest.raises(FacemoodError, match="needs FER2013's CSV"):
        soft_targets(load_dataset(folder), faces.write_ferplus_csv(tmp_path / "v.csv", fer), 0.5)
    with pytest.raises(FacemoodError, match="between 0 and 1"):
        soft_targets(load_dataset(fer), tmp_path / "v.csv", 1.5)


def test_training_pipeline_feeds_the_soft_targets_and_class_weights(tmp_path, fer):
    from train.config import TrainConfig
    from train.train import _training_pipeline

    ds = load_dataset(fer)
    targets = soft_targets(ds, faces.write_ferplus_csv(tmp_path / "votes.csv", fer), 0.5)["train"]
    class_weights = {i: float(i + 1) for i in range(7)}
    config = TrainConfig(batch_size=len(ds.train), augment=0)
    _, y, w = next(iter(_training_pipeline(ds.train, targets, class_weights, config)))
    # Shuffled together: every row's target belongs to an image of the class its weight says.
    rows = {tuple(np.round(t, 5)) for t in targets}
    assert {tuple(np.round(t, 5)) for t in y.numpy()} == rows
    assert sorted(w.numpy().tolist()) == sorted(float(l + 1) for l in ds.train.labels)
    for t, weight in zip(y.numpy(), w.numpy()):
        assert weight == np.argmax(t) + 1


def test_augment_0_hands_the_images_over_untouched_not_even_mirrored(fer):
    from train.config import TrainConfig
    from train.train import _training_pipeline

    ds = load_dataset(fer)
    targets = np.eye(7, dtype=np.float32)[ds.train.labels]
    config = TrainConfig(batch_size=len(ds.train), augment=0)
    x = next(iter(_training_pipeline(ds.train, targets, {i: 1.0 for i in range(7)}, config)))[0].numpy()
    assert x.dtype == np.float32
    assert sorted(image.tobytes() for image in x[..., 0]) == sorted(
        image.astype(np.float32).tobytes() for image in ds.train.images)


def test_mixup_blends_images_targets_and_weights_by_one_share(tmp_path, fer):
    from train.config import TrainConfig
    from train.train import _training_pipeline

    ds = load_dataset(fer)
    targets = np.eye(7, dtype=np.float32)[ds.train.labels]
    class_weights = {i: float(i + 1) for i in range(7)}
    config = TrainConfig(batch_size=len(ds.train), augment=0, mixup=0.4)
    x, y, w = (t.numpy() for t in next(iter(_training_pipeline(ds.train, targets, class_weights, config))))
    assert np.allclose(y.sum(axis=1), 1) and (y >= 0).all()
    blended = (y > 1e-6).sum(axis=1) == 2
    assert blended.mean() > 0.5  # most images got a partner of another class
    # Every training image as the augmenter may hand it over (mirrored or not), by class.
    seen = {c: [v.astype(np.float32) for img in ds.train.images[ds.train.labels == c] for v in (img, img[:, ::-1])]
            for c in range(7)}
    for image, target, weight in zip(x[..., 0], y, w):
        # The share in the target is the share in the weight and in the pixels.
        (i, j), (p, q) = np.argsort(target)[-2:][::-1], np.sort(target)[-2:][::-1]
        if q > 1e-6:
            assert weight == pytest.approx(p * (i + 1) + q * (j + 1), rel=1e-4)
            assert min(np.abs(image - (p * a + q * b)).max() for a in seen[i] for b in seen[j]) < 1e-2
    with pytest.raises(FacemoodError, match="--mixup"):
        _training_pipeline(ds.train, targets, class_weights, TrainConfig(mixup=-1))


def test_low_resolution_blurs_the_share_of_images_it_is_given(fer):
    """--low-res 1: every training image comes back as blurred as a face of 12-47 pixels enlarged;
    --low-res 0: as sharp as it was. Sharpness: mean difference between neighbouring pixels."""
    from train.config import TrainConfig
    from train.train import _training_pipeline

    ds = load_dataset(fer)
    targets = np.eye(7, dtype=np.float32)[ds.train.labels]
    weights = {i: 1.0 for i in range(7)}

    def sharpness(low_res):
        config = TrainConfig(batch_size=len(ds.train), augment=0, low_res=low_res)
        x = next(iter(_training_pipeline(ds.train, targets, weights, config)))[0].numpy()[..., 0]
        assert x.shape[1:] == ds.train.images.shape[1:] and x.min() >= 0 and x.max() <= 255
        return np.abs(np.diff(x, axis=2)).mean(axis=(1, 2))

    sharp, blurred = sharpness(0.0), sharpness(1.0)
    original = np.abs(np.diff(ds.train.images.astype(np.float32), axis=2)).mean()
    assert sharp.mean() == pytest.approx(original, rel=1e-4)  # flipping aside, untouched
    assert (blurred <= sharp + 1e-3).all() and blurred.mean() < 0.9 * sharp.mean()  # same order: same seed
    with pytest.raises(FacemoodError, match="--low-res"):
        _training_pipeline(ds.train, targets, weights, TrainConfig(low_res=1.5))


def test_low_resolution_refuses_crops_it_cannot_shrink(tmp_path):
    """Crops of 12 pixels or fewer have no smaller side to be shrunk to: said before any work, not
    by a TensorFlow traceback in the first batch."""
    from train.config import TrainConfig
    from train.train import train

    data = faces.write_class_folders(tmp_path / "faces", per_class=6, size=12)
    with pytest.raises(FacemoodError, match="needs an --image-size above 12, not 12"):
        train(data, tmp_path / "model", TrainConfig(image_size=12, input_size=32, low_res=0.5, epochs=1),
              progress=False)
    assert not (tmp_path / "model").exists()


def test_build_train_with_ferplus_records_the_votes_file(tmp_path, fer):
    votes = faces.write_ferplus_csv(tmp_path / "votes.csv", fer)
    model_dir = tmp_path / "model"
    run_build("train", "--data", fer, "--ferplus", votes, "--ferplus-weight", "0.4", "--model-dir", model_dir,
              "--epochs", 1, "--max-steps", 2, "--batch-size", 8, "--input-size", 48, "--quiet")
    training = json.loads((model_dir / "metadata.json").read_text())["training"]
    assert training["data"]["ferplus_votes"] == "votes.csv"
    assert training["config"]["ferplus"] == "votes.csv" and training["config"]["ferplus_weight"] == 0.4
    bad = run_build("train", "--data", fer, "--ferplus", tmp_path / "none.csv", "--model-dir", tmp_path / "m2",
                    "--epochs", 1, "--max-steps", 1, "--quiet", check=False)
    assert bad.returncode != 0 and "error:" in bad.stderr and "does not exist" in bad.stderr
    assert not (tmp_path / "m2").exists()
