"""Pieces shared by every step: user-facing errors and atomic file output."""
