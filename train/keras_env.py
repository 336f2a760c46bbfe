"""Import Keras 2 (tf_keras) rather than Keras 3: TF.js 4.22 cannot read Keras 3 layer configs."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Without oneDNN's graph rewrites, so that the TF.js graph does not depend on the converting
# machine's CPU: where oneDNN is on, TF's remapper fuses MobileNetV3's hard-swish into its
# convolutions (_FusedConv2D + _FusedHardSwish), an op TF.js cannot run. Set here, for every
# command, because TF reads it once per process and `build.py compare` trains and converts in one.
# Training speed is the same either way on these CPUs (about 550 images/s for MobileNetV3-Small at
# 72 px on 2 cores).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# tensorflowjs imports TF Decision Forests, whose greeting needs IPython when stdout is not a tty.
os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
