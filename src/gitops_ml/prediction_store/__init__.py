"""Prediction store: served predictions, late labels, monitor runs and retraining PRs (SQLAlchemy)."""

from __future__ import annotations

from gitops_ml.prediction_store.predictions import BatchingLogger, PredictionStore, coerce_label

__all__ = ["BatchingLogger", "PredictionStore", "coerce_label"]
