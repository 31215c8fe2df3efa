"""Evaluation: metrics, per-segment metrics, candidate vs production comparison, gates, plots.

Pure functions over predictions; the caller scores the models and writes the report. Import the
modules (`gitops_ml.evaluation.metrics`, `.compare`, `.gates`, ...); nothing is re-exported here.
"""
