"""Data -> trained Keras model, its metadata, metrics and plots."""
