"""Synthetic predictions for the evaluation tests: small, seeded, with ties where it matters."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gitops_ml.evaluation.metrics import Predictions


def binary_pair(n: int = 2000, seed: int = 0, shift: float = 0.0, noise: float = 0.05, decimals: int = 2):
    """Two correlated binary models on the same rows; `shift` makes the candidate worse (>0)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    latent = y * 1.2 + rng.normal(0, 1, n)
    prod_score = 1 / (1 + np.exp(-(latent - 0.5)))
    cand_latent = latent + rng.normal(0, noise, n) + shift * rng.normal(0, 1, n)
    cand_score = 1 / (1 + np.exp(-(cand_latent - 0.5)))
    prod_score, cand_score = np.round(prod_score, decimals), np.round(cand_score, decimals)  # ties

    def make(score: np.ndarray) -> Predictions:
        return Predictions(
            y, (score >= 0.5).astype(int), score, "binary", classes=np.array([0, 1]), positive_label=1
        )

    return make(cand_score), make(prod_score)


def multiclass_preds(n: int = 600, seed: int = 0, classes=("a", "b", "c")) -> Predictions:
    rng = np.random.default_rng(seed)
    classes = np.array(classes)
    y = rng.integers(0, len(classes), n)
    logits = rng.normal(0, 1, (n, len(classes)))
    logits[np.arange(n), y] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Predictions(classes[y], classes[proba.argmax(axis=1)], proba, "multiclass", classes=classes)


def regression_preds(n: int = 500, seed: int = 0, noise: float = 1.0) -> Predictions:
    rng = np.random.default_rng(seed)
    y = 100 + rng.normal(0, 5, n)
    return Predictions(y, y + rng.normal(0, noise, n), None, "regression")


def equal_models_on_small_segments():
    """Two equally good binary models (independent noise around one signal) on two 80-row
    segments: segment "a"'s AUC delta is about -0.085 by chance, its paired interval includes 0."""
    rng = np.random.default_rng(5)
    n = 160
    y = (rng.random(n) < 0.4).astype(int)

    def model(seed: int) -> Predictions:
        score = 1 / (1 + np.exp(-(y + np.random.default_rng(seed).normal(0, 1, n))))
        return Predictions(y, (score >= 0.5).astype(int), score, "binary", positive_label=1)

    return model(2), model(1), pd.DataFrame({"plan": ["a"] * 80 + ["b"] * 80})
