"""PNG plots of a training run: learning curves and a confusion matrix."""
import matplotlib

matplotlib.use("Agg")  # files only; no display on build machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_learning_curves(history, path, earlier_runs=()):
    """`history`: Keras History.history dict (loss, val_loss, accuracy, val_accuracy per epoch).
    `earlier_runs`: the histories of the runs this one continued, oldest first; drawn before it,
    a dashed line where each run starts."""
    runs = [*earlier_runs, history]
    joined = {key: [v for run in runs for v in run[key]] for key in ("loss", "val_loss", "accuracy", "val_accuracy")}
    epochs = np.arange(1, len(joined["loss"]) + 1)
    starts = np.cumsum([len(run["loss"]) for run in runs])[:-1]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    for ax, key, title in ((ax_loss, "loss", "Loss"), (ax_acc, "accuracy", "Accuracy")):
        ax.plot(epochs, joined[key], label="train", marker="o", ms=3)
        ax.plot(epochs, joined[f"val_{key}"], label="validation", marker="o", ms=3)
        for start in starts:
            ax.axvline(start + 0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(title if len(runs) == 1 else f"{title} ({len(runs)} runs, each continuing the one before)",
                     fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(confusion, class_names, path, title="Confusion matrix"):
    """Row-normalised confusion matrix (recall per true class), counts written in each cell."""
    confusion = np.asarray(confusion, float)
    rows = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    size = 1.2 + 0.65 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=110)
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{normalised[i, j]:.2f}\n{int(confusion[i, j])}", ha="center", va="center",
                    fontsize=7, color="white" if normalised[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
