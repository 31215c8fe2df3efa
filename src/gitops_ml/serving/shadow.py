"""Shadow scoring: the model that did not answer a request scores it too, off the response path.

The request path only offers the job to a bounded queue (`put_nowait`; when full the job is dropped
and counted, never waited for); one thread scores queued jobs in micro-batches of the same model and
hands the scores to the prediction logger as shadow records. So production and the challenger are
both scored on the same requests (`PredictionStore.paired`) while callers wait for one model only.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)

# Requests waiting for their shadow score; beyond this the shadow falls behind and drops (counted).
MAX_QUEUED_JOBS = 4096
# Rows scored in one call: the fixed cost of a model call dominates at one row.
BATCH_ROWS = 256


class ShadowModel(Protocol):
    @property
    def version(self) -> str: ...

    def predict(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...


class ShadowSink(Protocol):
    def log_shadow_many(self, records: Sequence[dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class _Job:
    model: ShadowModel
    role: str
    request_ids: list[str]
    inputs: list[dict[str, Any]]
    created_at: datetime


_STOP = object()


class ShadowScorer:
    """Scores offered jobs in a background thread and logs them; `offer` never blocks."""

    def __init__(
        self, sink: ShadowSink, *, max_queued_jobs: int = MAX_QUEUED_JOBS, batch_rows: int = BATCH_ROWS
    ):
        self.sink = sink
        self.batch_rows = batch_rows
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queued_jobs)
        self._thread: threading.Thread | None = None
        self.scored = 0  # rows scored and handed to the logger
        self.dropped = 0  # rows not scored because the queue was full
        self.failed = 0  # rows whose shadow prediction raised
        self.last_error: str | None = None

    def start(self) -> ShadowScorer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
            self._thread.start()
        return self

    def offer(
        self,
        model: ShadowModel,
        role: str,
        request_ids: list[str],
        inputs: list[dict[str, Any]],
        created_at: datetime,
    ) -> bool:
        """Queue a shadow score of these rows; False (and counted as dropped) when the queue is full."""
        if not inputs:
            return True
        try:
            self._queue.put_nowait(_Job(model, role, request_ids, inputs, created_at))
        except queue.Full:
            self.dropped += len(inputs)
            return False
        return True

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every job offered before this call is scored and logged (or failed)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Score what is queued, then stop the thread (before the logger closes)."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._queue.task_done()
                return
            jobs = [item]
            rows = len(item.inputs)
            stop = False
            while rows < self.batch_rows:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    self._queue.task_done()
                    break
                jobs.append(more)
                rows += len(more.inputs)
            by_model: dict[int, list[_Job]] = {}
            for job in jobs:
                by_model.setdefault(id(job.model), []).append(job)
            for group in by_model.values():
                self._score(group)
            for _ in jobs:
                self._queue.task_done()
            if stop:
                return

    def _score(self, jobs: list[_Job]) -> None:
        model = jobs[0].model
        inputs = [row for job in jobs for row in job.inputs]
        started = time.perf_counter()
        try:
            outputs = model.predict(inputs)
        except Exception as exc:  # noqa: BLE001 - a failing shadow must never touch serving
            self.failed += len(inputs)
            if self.last_error is None:
                log.error(
                    "shadow scoring with model %s failed: %s: %s", model.version, type(exc).__name__, exc
                )
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        latency_ms = (time.perf_counter() - started) * 1000
        records: list[dict[str, Any]] = []
        position = 0
        for job in jobs:
            for rid in job.request_ids:
                out = outputs[position]
                position += 1
                records.append(
                    {
                        "request_id": rid,
                        "role": job.role,
                        "created_at": job.created_at,
                        "model_version": model.version,
                        "output": out,
                        "score": out["score"],
                        "prediction": out["prediction"],
                        "latency_ms": latency_ms,
                    }
                )
        self.sink.log_shadow_many(records)
        self.scored += len(records)
