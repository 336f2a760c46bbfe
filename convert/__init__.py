"""Trained Keras model -> quantized TF.js graph model, and a Python runner for the converted model."""
