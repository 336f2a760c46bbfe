"""A per-class bias on the expression model's logits, fitted on the validation split so that no
class's recall falls below a floor (`build.py convert --min-recall`).

A network trained on FER2013 under-predicts its rarer, harder classes (fear is mostly read as sad
or surprise): its accuracy is the best it can do on the whole, but a person showing fear is
seldom told so. Adding a constant to a class's logit moves the decision boundary towards the
other classes without retraining (a prior shift, as in logit adjustment). The smallest such
shift that lifts every class to the floor is found on the validation split, as the page computes
scores (test-time flipping included), and folded into the final layer's bias, so the page runs
the same graph as before and nothing in it knows about the shift. The test split never takes part.
"""
import numpy as np

from common.errors import FacemoodError
from convert.selective_flip import combined, top_two_margin

STEP = 0.01    # logit units added per step to the class with the lowest recall
LIMIT = 3.0    # largest shift for one class: e^3 = 20 times the odds
SCORES_LAYER = "scores"  # train/model.py's final Dense layer (softmax)


def fit_class_bias(log_probs, labels, min_recall, names=None, start=None, flip_margin=None):
    """The smallest bias (one value per class, at least `start`, 0 by default) under which every
    class's recall reaches `min_recall`, found by raising the class with the lowest recall STEP at
    a time. `log_probs`: one (n, classes) array of log-probabilities per pass the page averages
    (the face, and its mirror image when it flips); `flip_margin`: the page flips only the faces
    whose first pass, bias included, puts its two best classes closer than this
    (convert/selective_flip.py); `labels`: (n,) true classes; `names`: the classes' names, for the
    error when no shift reaches the floor."""
    classes = log_probs[0].shape[1]
    bias = np.zeros(classes) if start is None else np.array(start, float)
    while True:
        recall = class_recall(shifted_probabilities(log_probs, bias, flip_margin), labels, classes)
        worst = int(np.argmin(recall))
        if recall[worst] >= min_recall:
            return bias
        if bias[worst] + STEP > LIMIT:
            name = names[worst] if names else f"class {worst}"
            raise FacemoodError(f"--min-recall {min_recall}: {name} reaches only {recall[worst]:.1%} "
                                f"recall on the validation split even with its logit raised by {LIMIT}")
        bias[worst] += STEP


def shifted_probabilities(log_probs, bias, flip_margin=None):
    """The page's class probabilities after adding `bias` to every pass's logits: the passes
    averaged, or with `flip_margin` (and two passes) the mirror image averaged in only where the
    first pass is unsure."""
    passes = [_softmax(passed + bias) for passed in log_probs]
    if flip_margin is not None and len(passes) == 2:
        return combined(passes[0], passes[1], top_two_margin(passes[0]) < flip_margin)
    return sum(passes) / len(passes)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def class_recall(probs, labels, classes):
    predicted = probs.argmax(axis=1)
    return np.array([(predicted[labels == k] == k).mean() if (labels == k).any() else 1.0 for k in range(classes)])


def with_class_bias(model, bias):
    """`model` with `bias` added to its final layer's bias (in place; returns the model)."""
    try:
        layer = model.get_layer(SCORES_LAYER)
    except ValueError:
        raise FacemoodError(f"this model has no final layer named {SCORES_LAYER!r} to carry a class bias") from None
    kernel, current = layer.get_weights()
    layer.set_weights([kernel, current + np.asarray(bias, current.dtype)])
    return model


def recorded_bias(metadata):
    """The bias metadata.json records (inference.class_bias), as an array in label order, or None."""
    recorded = metadata.get("inference", {}).get("class_bias")
    if not recorded:
        return None
    return np.array([recorded["bias"][label] for label in metadata["labels"]], np.float32)
