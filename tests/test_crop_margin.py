"""The composites of the crop-margin and tilt benchmarks: each face pasted twice at one place and
size, once on bare noise and once with its own border extended around it; a face turned by a known
angle, its roll reported as the page measures it (clockwise on screen)."""
import base64
import io

import numpy as np
from PIL import Image

from bench import tilt
from bench.crop_margin import BACKGROUNDS, CONTEXT, composites


def _decode(url):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("L"), np.float32)


def test_both_backgrounds_hold_the_same_face_at_the_same_place():
    # Left-to-right gradients: smooth, so resizing keeps them, and each row's border value is known.
    faces = np.broadcast_to(np.linspace(40, 200, 48, dtype=np.uint8), (4, 48, 48)).copy()
    for pasted in composites(faces, seed=5):
        assert set(pasted) == set(BACKGROUNDS)
        (noise_url, box), (context_url, context_box) = pasted["noise"], pasted["context"]
        assert box == context_box
        x, y, side, _ = box
        noise, context = _decode(noise_url), _decode(context_url)
        inner = np.s_[y + 4:y + side - 4, x + 4:x + side - 4]
        assert np.abs(noise[inner] - context[inner]).max() < 12  # the same face (resampled apart)
        # Around the square: the face's border continued, not noise.
        pad = int(round(side * CONTEXT))
        left_band = context[y + 4:y + side - 4, x - pad + 2:x - 2]
        assert np.abs(left_band - context[y + 4:y + side - 4, x + 1:x + 2]).max() < 12
        assert np.abs(noise[y + 4:y + side - 4, x - pad + 2:x - 2] - context[y + 4:y + side - 4, x + 1:x + 2]).max() > 40


def test_a_tilted_composite_reports_the_roll_it_drew(monkeypatch):
    """A white face with a black horizontal bar, on a white background: the bar's direction in the
    composite (principal axis of its dark pixels, y pointing down) is the reported roll."""
    monkeypatch.setattr(tilt, "noise_background", lambda rng, w, h: Image.new("RGB", (w, h), "white"))
    face = np.full((48, 48), 255, np.uint8)
    face[21:27, 4:44] = 0
    rng = np.random.default_rng(3)
    rolls = []
    for angle in (0, 20, 20, 45, 45, 45, 45):
        url, roll = tilt.tilted(face, angle, rng)
        assert abs(roll) == angle
        ys, xs = np.nonzero(_decode(url) < 100)
        direction = np.linalg.svd(np.stack([xs - xs.mean(), ys - ys.mean()]), full_matrices=False)[0][:, 0]
        drawn = np.degrees(np.arctan2(direction[1], direction[0]))
        drawn = (drawn + 90) % 180 - 90  # a line's direction is defined up to half a turn
        assert abs(drawn - roll) < 2
        rolls.append(roll)
    assert {np.sign(r) for r in rolls[1:]} == {-1, 1}  # turned both ways


def test_the_tilt_threshold_sweep_takes_the_turned_label_from_the_threshold_on():
    """Per face (measured |roll|, turned crop right, crop as it lies right): a threshold of 10 uses
    the turned crop for rolls of 10 and more; `never` uses every crop as it lies; undetected faces
    count as wrong (total 4 per angle, 3 found)."""
    outcomes = {0: [(3, False, True), (10, True, False), (25, True, False)]}
    rows = tilt._sweep(outcomes, total=4)
    assert rows["0"]["accuracy"] == {"0": 0.5}
    assert rows["10"]["accuracy"] == {"0": 0.75}
    assert rows["15"]["accuracy"] == {"0": 0.5}
    assert rows["30"]["accuracy"] == {"0": 0.25}
    assert rows["never"]["accuracy"] == {"0": 0.25} and rows["never"]["mean"] == 0.25


def test_the_detector_scale_benchmark_counts_a_face_once_its_box_matches_and_every_larger_size_passes():
    from bench.detector_scale import found, smallest_found

    face = [100, 100, 40, 40]
    assert found([[0, 0, 10, 10], [105, 95, 35, 45]], face)
    assert not found([[105, 95, 100, 100]], face)  # centre inside, but far too large
    assert not found([[150, 100, 40, 40]], face)  # the right size beside it
    # 90 % from 0.05 up; 0.03 passes too, but 0.04 below it does not.
    assert smallest_found({"0.03": 0.95, "0.04": 0.5, "0.05": 0.9, "0.1": 1.0}) == "0.05"
    assert smallest_found({"0.05": 0.9, "0.1": 0.8}) is None
