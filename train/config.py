"""Training settings, kept free of TensorFlow so `build.py --help` stays instant."""
import math
from dataclasses import dataclass

DEFAULT_SEED = 0


@dataclass
class TrainConfig:
    backbone: str = "mobilenet_v2"
    alpha: float = 0.35
    blocks: int = 0
    image_size: int = 48
    input_size: int = 64
    weights: str = "none"
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    label_smoothing: float = 0.1
    ferplus: str = ""
    ferplus_weight: float = 0.5
    dropout: float = 0.2
    augment: float = 1.0
    mixup: float = 0.0
    low_res: float = 0.0
    teacher: str = ""
    teacher_weight: float = 0.5
    teacher_temperature: float = 1.0
    patience: int = 6
    max_steps: int = 0
    seed: int | None = None  # None: DEFAULT_SEED, or with --resume the resumed model's seed
    crop_margin: float = 0.10


HELP = {
    "backbone": "mobilenet (V1), mobilenet_v2, mobilenet_v3_small, mobilenet_v3_large; for comparisons also "
                "densenet121, xception (input size >= 71), vgg16, efficientnet_b0",
    "alpha": "width multiplier of a MobileNet backbone (others have none)",
    "blocks": "keep only the first blocks of a mobilenet (V1) backbone, 1-13, 0 = all: with face-recognition "
              "weights (`build.py face-backbone`), 8 blocks keep the network under 1 MB",
    "image_size": "side of the grey face crop fed to the model (FER2013: 48)",
    "input_size": "side the backbone sees; the crop is up-sampled inside the model",
    "weights": "backbone weights: none, imagenet (Keras' download, cached in ~/.keras/models) or a weights file",
    "epochs": "most epochs; early stopping usually ends sooner",
    "batch_size": "images per step",
    "learning_rate": "peak Adam learning rate (cosine decay to 2%% of it)",
    "label_smoothing": "label smoothing of the cross-entropy",
    "ferplus": "FER+ votes (fer2013new.csv) of the FER2013 --data: train on soft targets mixing them with "
               "the FER2013 labels (validation and test keep FER2013's labels)",
    "ferplus_weight": "share of the FER+ vote distribution in each training target (with --ferplus)",
    "dropout": "dropout before the classification layer",
    "augment": "strength of the augmentation (scales rotation, zoom, shift, brightness, contrast); 0 = none",
    "mixup": "mixup strength: each training image is blended with another of its batch, targets and "
             "weights alike, by a share drawn from Beta(mixup, mixup); 0 = off (0.2 is a usual value)",
    "low_res": "share of training images first scaled down to a random side of 12 pixels up to the crop size "
               "and back up, as a small face of a group photo reaches the model; 0 = off",
    "teacher": "a trained model folder (for example a larger network fine-tuned from face-recognition weights): "
               "each training target mixes in its predicted distribution for the same augmented image "
               "(knowledge distillation); several folders separated by commas teach as one, the mean of "
               "their predictions; empty = none",
    "teacher_weight": "share of the teacher's prediction in each training target (with --teacher)",
    "teacher_temperature": "above 1, compare the teacher's and the model's distributions softened by this "
                           "temperature, so the model also learns how the teacher ranks the classes it does "
                           "not pick (with --teacher; 1 = mix the teacher's prediction into the target)",
    "patience": "epochs without a better validation accuracy before stopping",
    "max_steps": "steps per epoch, 0 = the whole training split (for quick runs)",
    "seed": f"random seed for the split, initialisation and shuffling (augmentation runs on several "
            f"threads, so its draws, and the trained weights, still vary a little from run to run); not given (None): "
            f"{DEFAULT_SEED}, or with --resume the resumed model's, so that a split chosen by the seed stays the same",
    "crop_margin": "context added around a detected face box on each side, as a fraction of the box, "
                   "recorded for the browser; the training default, which `convert --crop-margin` replaces with "
                   "what bench.crop_margin measures best for the trained network (0 for the shipped one)",
}


@dataclass(frozen=True)
class Number:
    """A numeric setting's type and range: `low` <= value <= `high` (strictly where `*_open`),
    None for no bound. Non-finite floats (nan, inf) never count as in range."""
    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value):
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above_low = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below_high = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above_low and below_high

    def __str__(self):
        bounds = []
        if self.low is not None:
            bounds.append(f"{'above' if self.low_open else 'at least'} {self.low}")
        if self.high is not None:
            bounds.append(f"{'below' if self.high_open else 'at most'} {self.high}")
        return " and ".join(bounds) or "a finite number"


# Settings that only act with another one: given without it, they would be ignored silently.
NEEDS = {"ferplus_weight": "ferplus", "teacher_weight": "teacher", "teacher_temperature": "teacher"}

SEED = Number(int, 0, 2**32 - 1)  # what NumPy and Keras accept as a seed
NUMBERS = {
    "alpha": Number(float, 0, low_open=True),
    "blocks": Number(int, 0, 13),
    "image_size": Number(int, 1),
    "input_size": Number(int, 1),
    "epochs": Number(int, 1),
    "batch_size": Number(int, 1),
    "learning_rate": Number(float, 0, low_open=True),
    "label_smoothing": Number(float, 0, 1),
    "ferplus_weight": Number(float, 0, 1),
    "dropout": Number(float, 0, 1, high_open=True),  # Keras' Dropout takes [0, 1)
    "augment": Number(float, 0),
    "mixup": Number(float, 0),
    "low_res": Number(float, 0, 1),
    "teacher_weight": Number(float, 0, 1, low_open=True),
    "teacher_temperature": Number(float, 0, low_open=True),
    "patience": Number(int, 0),
    "max_steps": Number(int, 0),
    "seed": SEED,
    "crop_margin": Number(float, 0, 1),
}


def check_numbers(config, *names):
    """Refuse a `config` whose settings `names` lie outside their NUMBERS range, as the CLI does:
    for callers that build a TrainConfig themselves (benchmarks, tests)."""
    from common.errors import FacemoodError

    for name in names:
        value = getattr(config, name)
        if not NUMBERS[name].holds(value):
            raise FacemoodError(f"--{name.replace('_', '-')} must be {NUMBERS[name]}, not {value}")
