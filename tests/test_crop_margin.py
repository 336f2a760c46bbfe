"""The crop-margin benchmark's composites: each face pasted twice at one place and size, once on
bare noise and once with its own border extended around it."""
import base64
import io

import numpy as np
from PIL import Image

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
