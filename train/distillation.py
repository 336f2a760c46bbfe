"""Knowledge distillation: a trained model (the teacher) shapes the targets another one learns from.

At temperature 1 the teacher's prediction is simply mixed into each training target. Above 1
(Hinton et al., 2015) both networks' distributions are softened before they are compared, so the
student also learns how the teacher ranks the classes it does not pick (a fearful face that looks
a little surprised, not at all happy). The teacher's prediction then travels beside the target, as one
vector of twice the classes, and the loss splits it:

    loss = (1 - share) * CE(smoothed target, p) + share * T^2 * CE(softmax(log t / T), softmax(log p / T))

T^2 keeps the soft term's gradients as large as at T = 1. Validation batches carry the target alone.
"""
from train.keras_env import keras, tf


def averaged(teachers):
    """A teacher predicting the mean of `teachers`' predictions: an ensemble taught as one."""
    def predict(x, training=False):
        return tf.add_n([teacher(x, training=training) for teacher in teachers]) / len(teachers)

    return predict


def mixed_targets(teacher, share):
    """Map over (image, target, weight) batches: each target moved by `share` toward the teacher's
    prediction for the very image the student sees (augmented), so the two never disagree about what
    is in the picture."""
    def mix(x, y, w):
        return x, (1 - share) * y + share * teacher(x, training=False), w

    return mix


def packed_targets(teacher):
    """Map over (image, target, weight) batches: the target followed by the teacher's prediction for
    the very image the student sees."""
    def pack(x, y, w):
        return x, tf.concat([y, tf.cast(teacher(x, training=False), y.dtype)], axis=-1), w

    return pack


class TemperatureDistillation(keras.losses.Loss):
    """Cross-entropy with the target plus the softened teacher term, per image (class weights apply)."""

    def __init__(self, num_classes, share, temperature, label_smoothing=0.0, name="temperature_distillation"):
        super().__init__(name=name)
        self.num_classes, self.share, self.temperature = num_classes, share, temperature
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        p = tf.clip_by_value(y_pred, 1e-7, 1.0)
        target = y_true[:, :self.num_classes] * (1 - self.label_smoothing) + self.label_smoothing / self.num_classes
        hard = -tf.reduce_sum(target * tf.math.log(p), axis=-1)
        if y_true.shape[-1] == self.num_classes:  # a validation batch: the target alone
            return hard
        teacher = tf.clip_by_value(y_true[:, self.num_classes:], 1e-7, 1.0)
        soft_teacher = tf.nn.softmax(tf.math.log(teacher) / self.temperature)
        log_soft_student = tf.nn.log_softmax(tf.math.log(p) / self.temperature)
        soft = -tf.reduce_sum(soft_teacher * log_soft_student, axis=-1) * self.temperature ** 2
        return (1 - self.share) * hard + self.share * soft

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "share": self.share,
                "temperature": self.temperature, "label_smoothing": self.label_smoothing}


def label_accuracy(num_classes):
    """Accuracy against the target's own classes, whether or not the teacher's prediction follows."""
    def accuracy(y_true, y_pred):
        return tf.cast(tf.equal(tf.argmax(y_true[:, :num_classes], -1), tf.argmax(y_pred, -1)), tf.float32)

    accuracy.__name__ = "accuracy"  # the name early stopping and the history read
    return accuracy
