"""Test-time flipping only for the faces the network is unsure of (convert/selective_flip.py)."""
import numpy as np
import pytest

from convert.graph_model import page_probabilities
from convert.selective_flip import combined, fit_flip_margin, top_two_margin, unsure

FLIPPING = {"inference": {"test_time_flip": True}}


def _faces(count=200, seed=0):
    """First-pass and mirror probabilities for three classes: the first pass is right on its sure
    faces (margin above 0.5) and wrong on the unsure ones, where the mirror image is right."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    sure = np.arange(count) % 4 != 0  # a quarter of the faces are unsure
    single = np.full((count, 3), 0.1)
    mirror = np.full((count, 3), 0.1)
    for i, label in enumerate(labels):
        if sure[i]:
            single[i, label] = 0.8
            mirror[i, label] = 0.8
        else:  # the first pass leans towards the wrong class, the mirror image firmly to the right one
            single[i] = 0.3
            single[i, (label + 1) % 3] = 0.4
            mirror[i, label] = 0.8
    return single, mirror, labels, sure


def test_the_margin_is_the_smallest_share_that_levels_with_flipping_every_face():
    single, mirror, labels, sure = _faces()
    margin, share = fit_flip_margin(single, mirror, labels)
    assert share == pytest.approx(0.25)  # exactly the unsure faces, none of the sure ones
    assert ((top_two_margin(single) < margin) == ~sure).all()
    picked = combined(single, mirror, top_two_margin(single) < margin).argmax(1)
    assert (picked == labels).all()


def _ordered(single_right, flipped_right):
    """Faces i = 0..n-1 of class 0, the first pass's margin growing with i (0.002 (i + 1)); whether
    one pass, and the mean with the mirror image, gets each right is given."""
    single, mirror = [], []
    for i, (right, flip_right) in enumerate(zip(single_right, flipped_right)):
        m = 0.002 * (i + 1)
        single.append([0.5, 0.5 - m, m] if right else [0.5 - m, 0.5, m])
        mirror.append([0.9, 0.05, 0.05] if flip_right else [0.0, 0.9, 0.1])
    return np.array(single), np.array(mirror), np.zeros(len(single), int)


def test_a_share_that_touches_the_target_by_luck_is_passed_over():
    """Flipping the 5 % least sure faces levels with flipping all, 10 % falls short, 15 % and more
    level again: the rule takes 15 %."""
    single_right = [0] * 5 + [1] * 5 + [0] * 5 + [1] * 85
    flipped_right = [1] * 5 + [0] * 5 + [1] * 5 + [1] * 85
    single, mirror, labels = _ordered(single_right, flipped_right)
    margin, share = fit_flip_margin(single, mirror, labels)
    assert share == pytest.approx(0.15)
    assert 0.030 < margin <= 0.032  # above the 15th face's margin, at most the 16th's


def test_every_face_is_flipped_when_no_share_short_of_all_levels():
    """The surest faces gain from their mirror image too: only flipping them all reaches the target."""
    single_right = [1] * 95 + [0] * 5
    flipped_right = [1] * 100
    single, mirror, labels = _ordered(single_right, flipped_right)
    assert fit_flip_margin(single, mirror, labels) == (1.0, 1.0)


def test_page_probabilities_runs_the_mirror_image_only_for_unsure_faces():
    single, mirror, labels, sure = _faces(40)
    batch = np.arange(40, dtype=np.float32)[:, None, None, None] * np.ones((1, 4, 4, 1), np.float32)
    batch[:, :, :2] += 100  # a face and its mirror image differ
    asked = []

    def graph(x):
        asked.append(len(x))
        mirrored = x[:, 0, 0, 0] < 100  # only a mirrored crop has its bright half on the right
        assert mirrored.all() or not mirrored.any()  # a batch is all first passes or all mirror images
        rows = (x[:, 0, -1, 0] if mirrored.all() else x[:, 0, 0, 0]).astype(int) - 100
        return (mirror if mirrored.all() else single)[rows].astype(np.float32)

    metadata = {"inference": {"test_time_flip": True, "flip_when_unsure": {"margin": 0.3}}}
    probs = page_probabilities(graph, batch, metadata)
    assert asked == [40, int((~sure).sum())]  # the second pass saw the unsure faces alone
    np.testing.assert_allclose(probs[sure], single[sure], rtol=1e-6)
    np.testing.assert_allclose(probs[~sure], (single[~sure] + mirror[~sure]) / 2, rtol=1e-6)
    asked.clear()
    np.testing.assert_allclose(page_probabilities(graph, batch, FLIPPING), (single + mirror) / 2, rtol=1e-6)
    assert asked == [40, 40]  # without a margin, every face is flipped


def test_unsure_follows_the_recorded_choice():
    single = np.array([[0.5, 0.45, 0.05], [0.9, 0.05, 0.05]])
    assert unsure(single, {}).tolist() == [False, False]
    assert unsure(single, FLIPPING).tolist() == [True, True]
    rule = {"inference": {"test_time_flip": True, "flip_when_unsure": {"margin": 0.1}}}
    assert unsure(single, rule).tolist() == [True, False]
    off = {"inference": {"test_time_flip": False, "flip_when_unsure": {"margin": 0.1}}}
    assert unsure(single, off).tolist() == [False, False]
