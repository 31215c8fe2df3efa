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
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, TypeAdapter, ValidationError

from gitops_ml.config import Settings
from gitops_ml.errors import GitopsMLError
from gitops_ml.evaluation.decision import decide
from gitops_ml.prediction_store.codecs import regression_answers
from gitops_ml.record_columns import ModelAnswers, RecordColumns
from gitops_ml.registry.challenger import (
    CHALLENGER_FILE,
    ChallengerPointer,
    load_challenger,
    parse_challenger,
)
from gitops_ml.registry.pointer import ProductionPointer, parse_pointer, require_in_history
from gitops_ml.registry.production import LoadedModel, load_pointed_model
from gitops_ml.serving.fast_path import CompiledPipeline, NotCompilable, check_equal, compile_pipeline

if TYPE_CHECKING:
    from gitops_ml.contracts.batch_validation import BatchValidator
    from gitops_ml.contracts.model import Contract

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(".gitops-ml/model-cache")


class ReloadError(GitopsMLError):
    """A new production model could not be loaded or failed its checks; the old one keeps serving."""


@dataclass(frozen=True)
class ServedModel:
    """A verified production model (`registry.production.LoadedModel`) plus what serving needs:
    the request model compiled from the contract, and the scoring function.

    Built once per model by `serve_model`; a challenger would be a second one of these.
    """

    model: LoadedModel
    settings: Settings  # feature lists are the model's own (metadata), not necessarily HEAD's config
    request_model: type[BaseModel]
    batch_validator: BatchValidator | None = None  # the same rules, a column at a time (batches)
    # Configured features this model does not use (a promotion that dropped one): accepted in
    # requests and ignored, so clients still sending them keep working.
    ignored_inputs: frozenset[str] = frozenset()
    positive_index: int | None = None  # binary: the predict_proba column of dataset.positive_label
    # The fast path (serving/fast_path.py); None when the pipeline is served by scikit-learn itself,
    # for the reason in `fallback_reason`.
    compiled: CompiledPipeline | None = None
    fallback_reason: str | None = None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def serving_path(self) -> str:
        if self.compiled is not None:
            return self.compiled.description
        return f"scikit-learn pipeline (not compiled: {self.fallback_reason})"

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def pointer(self) -> ProductionPointer:
        return self.model.pointer

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

    def json_inputs(self, validated: Sequence[BaseModel]) -> list[dict[str, Any]]:
        """The validated records as JSON values, without request_id: `model_dump(mode="json")`'s
        result, read from the instance's own field dict (a third of the cost of the dump, measured)
        for every record whose values are JSON already; a date or time is dumped by pydantic."""
        temporal = _temporal_fields(self.request_model)
        out = []
        for item in validated:
            values = item.__dict__
            if temporal and any(values[name] is not None for name in temporal):
                out.append(item.model_dump(mode="json", exclude={"request_id"}))
                continue
            row = dict(values)
            del row["request_id"]
            out.append(row)
        return out

    def predict(self, records: Sequence[Mapping[str, Any]]) -> ModelAnswers:
        """Score validated records; one answer per record (a dict of prediction, score,
        probabilities), held by column until a dict is asked for.

        For classifiers the prediction follows the model's decision rule (`evaluation.decision.decide`:
        the most probable class unless its metadata records a threshold or cost matrix), from the
        same probabilities, so the pipeline runs once, not twice.
        `score` is the positive-class probability (binary), the top probability (multiclass) or
        the predicted value (regression).
        """
        pipeline = self.model.pipeline
        task = self.settings.dataset.task
        if task == "regression":
            values = (
                self.compiled.predict_values(records)
                if self.compiled is not None
                else np.asarray(pipeline.predict(self._frame(records)), dtype=float)
            ).tolist()
            return regression_answers(values)
        proba = (
            self.compiled.predict_proba(records)
            if self.compiled is not None
            else np.asarray(pipeline.predict_proba(self._frame(records)), dtype=float)
        )
        _, keys = self._labels
        # the model's own decision rule (cost-chosen threshold / minimum expected cost), from its metadata
        decided = decide(proba, self.model.pipeline.classes_, self.model.decision).tolist()
        if self.positive_index is not None:
            scores = proba[:, self.positive_index].tolist()
        else:
            scores = proba.max(axis=1).tolist()
        return ModelAnswers(decided, scores, keys, proba.tolist())

    def _frame(self, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        from gitops_ml.training.pipeline import prepare_features

        columns = self.feature_columns
        if isinstance(records, RecordColumns):
            frame = pd.DataFrame({c: records.column(c) for c in columns}, columns=columns)
        else:
            frame = pd.DataFrame.from_records(list(records), columns=columns)
        return prepare_features(frame, self.settings)

    @cached_property
    def _labels(self) -> tuple[list[Any], tuple[str, ...]]:
        labels = np.asarray(self.model.pipeline.classes_).tolist()
        return labels, tuple(str(c) for c in labels)


_ADAPTERS: dict[type[BaseModel], TypeAdapter[list[Any]]] = {}
_TEMPORAL: dict[type[BaseModel], tuple[str, ...]] = {}
_TEMPORAL_FORMATS = frozenset({"date", "date-time", "time"})


def _temporal_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """Fields whose validated value is a date, datetime or time (JSON text only once dumped)."""
    fields = _TEMPORAL.get(model)
    if fields is None:
        properties = model.model_json_schema().get("properties", {})

        def formats(prop: dict[str, Any]) -> set[str]:
            found = {prop["format"]} if "format" in prop else set()
            for option in prop.get("anyOf", ()):
                found |= formats(option)
            return found

        fields = _TEMPORAL[model] = tuple(
            name for name, prop in properties.items() if formats(prop) & _TEMPORAL_FORMATS
        )
    return fields


def _batch_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return adapter


def build_request_model(settings: Settings) -> type[BaseModel]:
    """The request model for the configured features, from the data contract."""
    from gitops_ml.contracts.requests import request_model

    return request_model(*_request_columns(settings))


def build_batch_validator(settings: Settings) -> BatchValidator:
    """The column-wise check of a batch, built from what `build_request_model` is built from."""
    from gitops_ml.contracts.batch_validation import batch_validator

    return batch_validator(*_request_columns(settings))


def _request_columns(settings: Settings) -> tuple[Contract, list[str], list[str]]:
    from gitops_ml.contracts.model import load_contract

    contract = load_contract(settings.dataset.contract)
    # Non-feature columns (id, dates) are accepted and checked but optional: the model does not
    # need them; the retraining export does (a logged row without them is left out, counted).
    others = [
        c for c in contract.column_names if c != settings.dataset.target and c not in settings.features.all
    ]
    return contract, list(settings.features.all), others


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


def serve_model(model: LoadedModel, settings: Settings) -> ServedModel:
    """Check a verified model against serving's needs and compile what requests use.

    Refused (ReloadError) when it was trained on other features than its metadata says, when the
    positive label is not one of its classes, or when a smoke prediction fails.
    """
    model_settings = model.model_settings(settings)
    _check_features(model.pipeline, model_settings, model.version)
    positive = None
    if model_settings.dataset.task == "binary":
        try:
            positive = model.positive_index(model_settings.dataset.positive_label)
        except GitopsMLError as exc:
            raise ReloadError(f"model {model.version}: {exc}") from exc
    served = ServedModel(
        model=model,
        settings=model_settings,
        request_model=build_request_model(model_settings),
        batch_validator=build_batch_validator(model_settings),
        ignored_inputs=frozenset(settings.features.all) - frozenset(model_settings.features.all),
        positive_index=positive,
    )
    smoke_test(served)  # on the scikit-learn pipeline: the reference the fast path must match
    compiled, reason = _compile(served)
    served = replace(served, compiled=compiled, fallback_reason=reason)
    if compiled is not None:
        smoke_test(served)
    return served


def _compile(served: ServedModel) -> tuple[CompiledPipeline | None, str | None]:
    """The fast path for this model, checked on probe rows against its pipeline; else (None, why)."""
    features = served.settings.features
    try:
        compiled = compile_pipeline(served.model.pipeline, features.numeric, features.categorical)
        records = probe_records(served)
        reason = check_equal(compiled, served.model.pipeline, served._frame(records), records)
    except NotCompilable as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a fast path that cannot even be checked is not used
        return None, f"{type(exc).__name__}: {exc}"
    return (compiled, None) if reason is None else (None, reason)


def probe_records(served: ServedModel) -> list[dict[str, Any]]:
    """Rows the fast path must score exactly like the pipeline before it serves: the metadata's
    sample, one valid record from the contract, and edge rows (all missing, unknown categories,
    huge and tiny numbers, zeros)."""
    features = served.settings.features
    metadata = served.model.metadata
    rows: list[dict[str, Any]] = []
    if metadata is not None and metadata.sample_record:
        rows.append({c: metadata.sample_record.get(c) for c in served.feature_columns})
    rows.append(example_record(served.request_model, served.feature_columns))
    base = rows[0]
    rows.append(dict.fromkeys(served.feature_columns))
    rows.append({**base, **dict.fromkeys(features.categorical, "\xa0never-seen-category")})
    for extreme in (1e30, -1e30, 0.0, 1e-300, -0.5):  # within float32: forests cast to it
        rows.append({**base, **dict.fromkeys(features.numeric, extreme)})
    rows.append({**base, **dict.fromkeys(features.categorical)})
    return rows


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


def smoke_test(model: ServedModel) -> None:
    """One prediction on a sample record (from metadata, else made from the contract) must work."""
    metadata = model.model.metadata
    sample = metadata.sample_record if metadata is not None else None
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


@dataclass(frozen=True)
class ServedChallenger:
    """The challenger (`deploy/challenger.yaml` beside the pointer), verified and compiled like production."""

    served: ServedModel
    pointer: ChallengerPointer

    @property
    def version(self) -> str:
        return self.pointer.version


class ModelHolder:
    """Holds the served model and the challenger, if any; `check()` (or the poll thread) reloads
    either when its pointer file changes."""

    def __init__(
        self,
        pointer_path: Path,
        settings: Settings,
        *,
        reload_interval_s: float | None = None,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        history_path: Path | None = None,
    ):
        self.pointer_path = Path(pointer_path)
        # Only versions promotion recorded are served; the history sits beside the pointer.
        self.history_path = (
            Path(history_path)
            if history_path is not None
            else (self.pointer_path.parent / Path(settings.registry.history).name)
        )
        self.settings = settings
        self.reload_interval_s = reload_interval_s or settings.serving.reload_interval_s
        self.cache_dir = Path(cache_dir)
        self._current: ServedModel | None = None
        self._seen_digest: str | None = None  # pointer content last acted on
        self._reload_error: str | None = None
        self._not_ready_reason = f"{self.pointer_path}: not read yet"
        self.challenger_path = self.pointer_path.parent / CHALLENGER_FILE.name
        self._challenger: ServedChallenger | None = None
        self._challenger_seen: tuple[str | None, str | None] | None = None  # (file digest, production)
        self._challenger_error: str | None = None
        self._challenger_production: str | None = None  # the production version it was checked against
        # Called with (challenger, production) whenever a challenger is (re)loaded: the app has the
        # log worker load the models it will shadow-score with before their first request.
        self.on_challenger: Callable[[ServedChallenger, ServedModel | None], None] | None = None
        self._check_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> ServedModel | None:
        return self._current

    @property
    def reload_error(self) -> str | None:
        return self._reload_error

    @property
    def not_ready_reason(self) -> str | None:
        return None if self._current is not None else self._not_ready_reason

    @property
    def challenger(self) -> ServedChallenger | None:
        return self._challenger

    @property
    def challenger_error(self) -> str | None:
        return self._challenger_error

    def check(self) -> bool:
        """Reload if the pointer's content changed since the last check. True if a new model was swapped in.

        Then the challenger: re-read when its file or the production model changed (a challenger
        is judged against the production it challenges); a refused one is dropped, production
        keeps serving, and `challenger_error` says why.
        """
        with self._check_lock:
            swapped = self._check_production()
            self._check_challenger()
            return swapped

    def _check_challenger(self) -> None:
        path = self.challenger_path
        try:
            text: bytes | None = path.read_bytes()
        except FileNotFoundError:
            text = None
        except OSError as exc:
            self._drop_challenger(f"{path}: cannot read: {exc}")
            return
        production = self._current
        seen = (
            hashlib.sha256(text).hexdigest() if text is not None else None,
            production.version if production is not None else None,
        )
        # unchanged: nothing to do, unless the last attempt failed (a store may have been down)
        if seen == self._challenger_seen and self._challenger_error is None:
            return
        first_attempt = seen != self._challenger_seen
        self._challenger_seen = seen
        if text is None:
            self._drop_challenger(None)
            return
        try:
            pointer = parse_challenger(text, path)
            if pointer is None:
                self._drop_challenger(None)
                return
            current = self._challenger
            if current is not None and current.pointer == pointer and self._challenger_production == seen[1]:
                return  # only comments/formatting changed
            loaded = load_challenger(pointer, production.model if production else None, self.cache_dir, path)
            served = serve_model(loaded, self.settings)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with the challenger, production serves on
            message = str(exc) if isinstance(exc, GitopsMLError) else f"{type(exc).__name__}: {exc}"
            self._drop_challenger(message, log_it=first_attempt)
            return
        self._challenger = ServedChallenger(served=served, pointer=pointer)
        self._challenger_production = seen[1]
        self._challenger_error = None
        log.info("challenger %s (%s) loaded with %s", pointer.version, pointer.mode, served.serving_path)
        if self.on_challenger is not None:
            self.on_challenger(self._challenger, production)

    def _drop_challenger(self, error: str | None, *, log_it: bool = True) -> None:
        if self._challenger is not None:
            log.info("challenger %s no longer served", self._challenger.version)
        self._challenger = None
        self._challenger_error = error
        if error is not None and log_it:
            log.error("challenger refused, production keeps serving alone: %s", error)

    def _check_production(self) -> bool:
        try:
            text = self.pointer_path.read_bytes()
        except FileNotFoundError:
            self._seen_digest = None
            if self._current is None:
                self._not_ready_reason = f"no production model yet: {self.pointer_path} not found"
            else:
                self._reload_error = f"{self.pointer_path} not found; still serving {self._current.version}"
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
            require_in_history(pointer, self.history_path)
            model = serve_model(load_pointed_model(pointer, self.cache_dir), self.settings)
        except Exception as exc:  # noqa: BLE001 - whatever breaks, the old model keeps serving
            message = str(exc) if isinstance(exc, GitopsMLError) else f"{type(exc).__name__}: {exc}"
            self._fail(message, log_it=first_attempt)
            return False
        previous = self._current
        self._current = model  # one reference assignment: requests see the old or the new model
        self._reload_error = None
        log.info(
            "serving model %s (was %s) with %s",
            model.version,
            previous.version if previous else "none",
            model.serving_path,
        )
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
