"""Loading the model the production pointer names, and scoring it on new rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gitops_ml.config import FeaturesConfig, RegistryConfig, Settings
from gitops_ml.registry.pointer import ProductionPointer, read_pointer
from gitops_ml.registry.store import fetch_artifact


@dataclass(frozen=True)
class LoadedModel:
    pointer: ProductionPointer
    pipeline: Any
    metadata: dict[str, Any]
    path: Path

    @property
    def version(self) -> str:
        return self.pointer.version


def load_production(registry: RegistryConfig, cache_dir: Path) -> LoadedModel | None:
    """None when no pointer exists yet. The artifact's sha256 and skops allow-list are checked here."""
    from gitops_ml.registry.artifacts import METADATA_FILE, load_model, read_metadata

    pointer = read_pointer(registry.pointer)
    if pointer is None:
        return None
    path = fetch_artifact(pointer.artifact_uri, cache_dir)
    pipeline = load_model(path, expected_sha256=pointer.sha256)
    metadata = read_metadata(path.parent) if (path.parent / METADATA_FILE).exists() else {}
    return LoadedModel(pointer=pointer, pipeline=pipeline, metadata=metadata, path=path)


def model_features(metadata: dict[str, Any], settings: Settings) -> Settings:
    """Settings whose feature lists are the ones the model was trained with (they may differ from HEAD's)."""
    numeric = metadata.get("numeric_features")
    categorical = metadata.get("categorical_features")
    if numeric is None and categorical is None:
        return settings
    features = FeaturesConfig(
        **{
            **settings.features.model_dump(),
            "numeric": list(numeric or []),
            "categorical": list(categorical or []),
        }
    )
    return settings.model_copy(update={"features": features})


def score_with_production(production: LoadedModel, holdout: pd.DataFrame, settings: Settings):
    from gitops_ml.evaluation.metrics import predict
    from gitops_ml.training.pipeline import prepare_features, training_target

    model_settings = model_features(production.metadata, settings)
    return predict(
        production.pipeline,
        prepare_features(holdout, model_settings),
        training_target(holdout, settings),
        settings.dataset.task,
        settings.dataset.positive_label,
    )
