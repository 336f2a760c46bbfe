"""Classification figures from predicted probabilities: accuracy, macro-F1, per-class P/R, confusion."""
import numpy as np


def classification_report(probabilities, labels, class_names):
    """Summarise predictions against integer `labels`.

    Returns a JSON-ready dict: accuracy, macro_f1 (the mean F1 of the classes that occur among the
    labels or the predictions, as scikit-learn's f1_score(average="macro") computes it), loss (mean
    cross-entropy of the true class, without label smoothing), per_class {precision, recall, f1,
    support}, confusion (rows: true class, columns: predicted class) and the count.
    """
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels)
    k = len(class_names)
    predicted = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, int)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class, f1s = {}, []
    for i, name in enumerate(class_names):
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / confusion[i].sum() if confusion[i].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                           "f1": round(float(f1), 4), "support": int(confusion[i].sum())}
        if confusion[i].sum() or confusion[:, i].sum():  # a class never predicted nor present says nothing
            f1s.append(f1)
    return {
        "count": int(len(labels)),
        "accuracy": round(float((predicted == labels).mean()), 4) if len(labels) else None,
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else None,
        "loss": round(float(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1)).mean()), 4)
        if len(labels) else None,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }
