"""Prediction store: served predictions, late labels, monitor runs and retraining PRs (SQLAlchemy)."""

from __future__ import annotations

from gitops_ml.prediction_store.codecs import coerce_label
from gitops_ml.prediction_store.logger import BatchingLogger
from gitops_ml.prediction_store.repository import PredictionStore

__all__ = ["BatchingLogger", "PredictionStore", "coerce_label"]
