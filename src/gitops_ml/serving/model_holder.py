"""The model being served, and its hot reload when the production pointer changes.

A background thread reads the pointer file every `reload_interval_s`. When its content changes,
the new model is loaded and checked (sha256 and skops allow-list in `load_model`, the features it
was trained on, then a smoke prediction on a sample record) before one reference assignment swaps
it in. If any step fails, the old model keeps serving and the error is exposed (`reload_error`):
a bad promotion degrades to "not updated", never to "down".

Nothing here knows about HTTP; the app reads `holder.current` once per batch of requests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from gitops_ml.config import Settings
from gitops_ml.errors import ArtifactError, GitopsMLError

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(".gitops-ml/model-cache")
# Keys of metadata.json that may hold one raw input row for the smoke prediction.
SAMPLE_RECORD_KEYS = ("sample_record", "input_example", "example_record")


class ReloadError(GitopsMLError):
    """A new production model could not be loaded or failed its checks; the old one keeps serving."""


@dataclass(frozen=True)
class LoadedModel:
    """One loaded model and everything needed to validate requests for it and score them."""

    version: str
    pipeline: Any
    pointer: dict[str, Any]
    metadata: dict[str, Any]
    settings: Settings  # feature lists are the model's own (metadata), not necessarily HEAD's config
    request_model: type[BaseModel]
    artifact_path: Path
    # Configured features this model does not use (a promotion that dropped one): accepted in
    # requests and ignored, so clients still sending them keep working.
    ignored_inputs: frozenset[str] = frozenset()
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def feature_columns(self) -> list[str]:
        return list(self.settings.features.all)

    def without_ignored(self, record: Any) -> Any:
        if self.ignored_inputs and isinstance(record, dict) and not self.ignored_inputs.isdisjoint(record):
            return {k: v for k, v in record.items() if k not in self.ignored_inputs}
        return record

    @property
    def batch_adapter(self) -> TypeAdapter[list[Any]]:
        return _batch_adapter(self.request_model)

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Score validated records; one dict per record: prediction, score, probabilities.

        For classifiers the prediction is the class with the highest probability (what
        `predict` returns for scikit-learn classifiers) so the pipeline runs once, not twice.
        `score` is the positive-class probability (binary), the top probability (multiclass) or
        the predicted value (regression).
        """
        from gitops_ml.training.pipeline import prepare_features

        frame = pd.DataFrame.from_records(list(records), columns=self.feature_columns)
        X = prepare_features(frame, self.settings)
        task = self.settings.dataset.task
        if task == "regression":
            values = np.asarray(self.pipeline.predict(X), dtype=float).tolist()
            return [{"prediction": v, "score": v, "probabilities": None} for v in values]
        proba = np.asarray(self.pipeline.predict_proba(X), dtype=float)
        classes = np.asarray(self.pipeline.classes_)
        labels = classes.tolist()
        keys = [str(c) for c in labels]
        top = proba.argmax(axis=1)
        if task == "binary":
            scores = proba[:, self._positive_index(classes)].tolist()
        else:
            scores = proba.max(axis=1).tolist()
        rows = proba.tolist()
        return [
            {"prediction": labels[t], "score": s, "probabilities": dict(zip(keys, row, strict=True))}
            for t, s, row in zip(top.tolist(), scores, rows, strict=True)
        ]

    def _positive_index(self, classes: np.ndarray) -> int:
        positive = self.settings.dataset.positive_label
        if positive is None:
            return 1
        matches = np.flatnonzero(classes.astype(str) == str(positive))
        if len(matches) != 1:
            raise ReloadError(
                f"dataset.positive_label {positive!r} is not one of the model's classes {classes.tolist()}"
            )
        return int(matches[0])


_ADAPTERS: dict[type[BaseModel], TypeAdapter[list[Any]]] = {}


def _batch_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return adapter


def build_request_model(settings: Settings) -> type[BaseModel]:
    """The request model for the configured features, from the data contract."""
    from gitops_ml.contracts.model import load_contract
    from gitops_ml.contracts.requests import request_model

    contract = load_contract(settings.dataset.contract)
    # Non-feature columns (id, dates) are accepted and checked but optional: the model does not
    # need them; the retraining export does (a logged row without them is left out, counted).
    others = [
        c for c in contract.column_names if c != settings.dataset.target and c not in settings.features.all
    ]
    return request_model(contract, settings.features.all, optional_columns=others)


def example_record(request_model: type[BaseModel], columns: Sequence[str] | None = None) -> dict[str, Any]:
    """A valid record for `columns` (default: every field) from the request model's JSON schema
    (allowed values, bounds). Optional non-feature fields (ids with patterns) are best left out."""
    schema = request_model.model_json_schema()
    properties = schema.get("properties", {})
    names = [c for c in columns if c in properties] if columns is not None else list(properties)
    return {
        name: _example_value(properties[name], schema.get("$defs", {}))
        for name in names
        if name != "request_id"
    }


def _example_value(prop: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in prop:
        return _example_value(defs.get(prop["$ref"].rsplit("/", 1)[-1], {}), defs)
    for key in ("anyOf", "oneOf"):
        if key in prop:
            options = [p for p in prop[key] if p.get("type") != "null"]
            return _example_value(options[0], defs) if options else None
    if "const" in prop:
        return prop["const"]
    if prop.get("enum"):
        return prop["enum"][0]
    kind = prop.get("type")
    if kind in ("integer", "number"):
        low = prop.get("minimum", prop.get("exclusiveMinimum"))
        high = prop.get("maximum", prop.get("exclusiveMaximum"))
        if low is not None and high is not None:
            value = (low + high) / 2
        elif low is not None:
            value = low + 1
        elif high is not None:
            value = high - 1
        else:
            value = 1
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = prop.get("format")
        if fmt == "date":
            return "2026-01-01"
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        return "x"
    return None


def parse_pointer(text: bytes, source: Path) -> dict[str, Any] | None:
    """The pointer's fields, validated; None for an empty file. ReloadError names the file."""
    from gitops_ml.registry.pointer import ProductionPointer

    try:
        data = yaml.safe_load(text.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ReloadError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        return None
    try:
        return ProductionPointer.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ReloadError(f"{source}: invalid production pointer: {problems}") from exc


def load_served_model(
    pointer: Mapping[str, Any],
    settings: Settings,
    *,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> LoadedModel:
    """Fetch, verify, and smoke-test the model a pointer names. Raises GitopsMLError on any failure."""
    from gitops_ml.registry.artifacts import load_model
    from gitops_ml.registry.production import model_features
    from gitops_ml.registry.store import fetch_artifact

    version = str(pointer["version"])
    path = fetch_artifact(str(pointer["artifact_uri"]), Path(cache_dir))
    if path.is_dir():
        path = path / "model.skops"
    pipeline = load_model(path, expected_sha256=str(pointer["sha256"]))
    metadata = _read_metadata(path, pointer)
    model_settings = model_features(metadata, settings)
    _check_features(pipeline, model_settings, version)
    model = LoadedModel(
        version=version,
        pipeline=pipeline,
        pointer=dict(pointer),
        metadata=metadata,
        settings=model_settings,
        request_model=build_request_model(model_settings),
        artifact_path=path,
        ignored_inputs=frozenset(settings.features.all) - frozenset(model_settings.features.all),
    )
    smoke_test(model)
    return model


def _read_metadata(path: Path, pointer: Mapping[str, Any]) -> dict[str, Any]:
    meta_path = path.parent / "metadata.json"
    uri = pointer.get("metadata_uri")
    if uri and "://" not in str(uri):
        meta_path = Path(str(uri))
    if not meta_path.exists():
        return {}
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{meta_path}: not valid JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _check_features(pipeline: Any, settings: Settings, version: str) -> None:
    # A model trained on other columns would fail on every request; refuse it at load instead.
    trained = getattr(pipeline, "feature_names_in_", None)
    if trained is None:
        return
    expected = set(settings.features.all)
    if set(trained.tolist()) != expected:
        raise ReloadError(
            f"model {version} was trained on features {sorted(trained.tolist())}, "
            f"but serving expects {sorted(expected)}"
        )


def smoke_test(model: LoadedModel) -> None:
    """One prediction on a sample record (from metadata, else made from the contract) must work."""
    sample = next(
        (model.metadata[k] for k in SAMPLE_RECORD_KEYS if isinstance(model.metadata.get(k), dict)), None
    )
    record = (
        {c: sample.get(c) for c in model.feature_columns}
        if sample
        else example_record(model.request_model, model.feature_columns)
    )
    try:
        validated = model.request_model.model_validate(record).model_dump(mode="json", exclude={"request_id"})
    except ValidationError:
        validated = record  # a metadata sample older than the contract: still worth predicting on
    try:
        output = model.predict([validated])
    except Exception as exc:  # noqa: BLE001 - any failure here means "do not serve this model"
        raise ReloadError(
            f"model {model.version}: smoke prediction failed: {type(exc).__name__}: {exc}"
        ) from exc
    score = output[0]["score"] if output else None
    if len(output) != 1 or score is None or not math.isfinite(float(score)):
        raise ReloadError(f"model {model.version}: smoke prediction returned {output!r}")


class ModelHolder:
    """Holds the served model; `check()` (or the poll thread) reloads it when the pointer changes."""

    def __init__(
        self,
        pointer_path: Path,
        settings: Settings,
        *,
        reload_interval_s: float | None = None,
        cache_dir: Path = DEFAULT_CACHE_DIR,
    ):
        self.pointer_path = Path(pointer_path)
        self.settings = settings
        self.reload_interval_s = reload_interval_s or settings.serving.reload_interval_s
        self.cache_dir = Path(cache_dir)
        self._current: LoadedModel | None = None
        self._seen_digest: str | None = None  # pointer content last acted on
        self._reload_error: str | None = None
        self._not_ready_reason = f"{self.pointer_path}: not read yet"
        self._check_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    @property
    def reload_error(self) -> str | None:
        return self._reload_error

    @property
    def not_ready_reason(self) -> str | None:
        return None if self._current is not None else self._not_ready_reason

    def check(self) -> bool:
        """Reload if the pointer's content changed since the last check. True if a new model was swapped in."""
        with self._check_lock:
            try:
                text = self.pointer_path.read_bytes()
            except FileNotFoundError:
                self._seen_digest = None
                if self._current is None:
                    self._not_ready_reason = f"no production model yet: {self.pointer_path} not found"
                else:
                    self._reload_error = (
                        f"{self.pointer_path} not found; still serving {self._current.version}"
                    )
                return False
            except OSError as exc:
                self._fail(f"{self.pointer_path}: cannot read: {exc}")
                return False
            digest = hashlib.sha256(text).hexdigest()
            # Same content as last time: nothing to do, unless nothing serves yet (retry then).
            if digest == self._seen_digest and self._current is not None:
                return False
            first_attempt = digest != self._seen_digest
            self._seen_digest = digest
            try:
                pointer = parse_pointer(text, self.pointer_path)
                if pointer is None:
                    raise ReloadError(f"{self.pointer_path}: empty pointer (no production model)")
                if self._current is not None and pointer == self._current.pointer:
                    self._reload_error = None  # only comments/formatting changed
                    return False
                model = load_served_model(pointer, self.settings, cache_dir=self.cache_dir)
            except Exception as exc:  # noqa: BLE001 - whatever breaks, the old model keeps serving
                message = str(exc) if isinstance(exc, GitopsMLError) else f"{type(exc).__name__}: {exc}"
                self._fail(message, log_it=first_attempt)
                return False
            previous = self._current
            self._current = model  # one reference assignment: requests see the old or the new model
            self._reload_error = None
            log.info("serving model %s (was %s)", model.version, previous.version if previous else "none")
            return True

    def _fail(self, message: str, *, log_it: bool = True) -> None:
        if self._current is None:
            self._not_ready_reason = message
            if log_it:
                log.error("no model loaded: %s", message)
        else:
            self._reload_error = message
            if log_it:
                log.error("reload failed, still serving %s: %s", self._current.version, message)

    # -- poll thread -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="model-reloader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.reload_interval_s):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the poll thread must outlive any one failure
                log.exception("model reload check crashed")
