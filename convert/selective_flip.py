"""Test-time flipping only for the faces the network is unsure of (`build.py convert
--test-time-flip unsure`).

Averaging a face's scores with its mirror image's costs the page a second pass of the network
for every face. Where the first pass is sure (its two best classes far apart), the mirror image
rarely changes the answer: on the shipped network's validation faces, top-1 accuracy with
flipping the least sure part of the faces levels with flipping every face well before all are
flipped. So the page runs the mirror image only for faces whose top-two margin lies below a
threshold, fitted on the validation split, and the test split never takes part.

The threshold is the smallest of the validation margins' quantiles at STEP (a share of faces
flipped) from which on, at every larger share tried, accuracy is at least flipping every face's:
the first share to touch that figure may do so by one lucky face.
"""
import numpy as np

STEP = 0.05  # shares of the validation faces tried: none, 5 %, 10 %, ... 95 %


def top_two_margin(probs):
    """(n,) difference between each row's two largest probabilities."""
    ordered = np.sort(probs, axis=1)
    return ordered[:, -1] - ordered[:, -2]


def unsure(single, metadata):
    """(n,) True where the page runs the mirror image too: every face when the model flips without
    a margin (metadata.json: inference.test_time_flip alone), the faces whose first pass has a
    top-two margin below inference.flip_when_unsure.margin when it has one, none when it does not
    flip."""
    inference = metadata.get("inference", {})
    if not inference.get("test_time_flip"):
        return np.zeros(len(single), bool)
    rule = inference.get("flip_when_unsure")
    if not rule:
        return np.ones(len(single), bool)
    return top_two_margin(single) < rule["margin"]


def combined(single, mirror, flipped):
    """The page's scores: the mean of the two passes where `flipped`, the first pass elsewhere."""
    return np.where(flipped[:, None], (single + mirror) / 2, single)


def fit_flip_margin(single, mirror, labels):
    """(margin, share of faces flipped) by the rule in the module docstring, from the validation
    faces' first-pass and mirror-image probabilities and their true classes."""
    margins = top_two_margin(single)
    everyone = ((single + mirror) / 2).argmax(axis=1) == labels
    target = everyone.mean()
    shares = np.arange(0, 1 - STEP / 2, STEP)  # 0: the first pass alone (flipping never)
    thresholds = np.quantile(margins, shares)
    reaches = [(combined(single, mirror, margins < t).argmax(axis=1) == labels).mean() >= target
               for t in thresholds]
    # Walk down from the largest share while each reaches the target: the first share of that run.
    chosen = len(shares)
    while chosen > 0 and reaches[chosen - 1]:
        chosen -= 1
    if chosen == len(shares):
        return 1.0, 1.0  # no share short of all levels with flipping every face
    margin = round(float(thresholds[chosen]), 4)  # as metadata.json records it
    return margin, float((margins < margin).mean())
