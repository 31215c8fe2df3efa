"""Modelling: the config-built scikit-learn pipeline, its training and optional search."""
