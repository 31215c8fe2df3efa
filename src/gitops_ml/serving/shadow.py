"""Shadow scoring: the model that did not answer a request scores it too, off the response path.

This runs in the prediction log worker (`serving/log_worker.py`), a separate process, never in the
server: a shadow model on the server's event loop or in a thread beside it shares the server's GIL
and cost callers 44-176% of p50 (measured, docs/benchmarks.md). `offer` only appends a job to a
bounded list (when full the job is dropped and counted, never waited for); a scorer thread, at a
lower CPU priority than everything else (where the OS allows it), scores what has collected in
chunks of one model, once `batch_rows` rows are waiting or `batch_wait_s` after the last round,
and hands the scores to the sink (the worker's `BatchingLogger`) as shadow records. So production
and the challenger are both scored on the same requests (`PredictionStore.paired`) while callers
wait for one model only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gitops_ml.prediction_store.codecs import ShadowRows

log = logging.getLogger(__name__)

# Rows waiting for their shadow score; beyond this the shadow falls behind and drops (counted).
MAX_QUEUED_ROWS = 50_000
# Rows collected before a round, and how long rows may wait for one; rows scored per model call
# (a call's fixed cost dominates at one row; off the server, a chunk holds no caller up).
BATCH_ROWS = 512
BATCH_WAIT_S = 0.25
CHUNK_ROWS = 256
# Added to the scorer thread's nice value: on a busy core the server and the prediction writer go first.
SCORER_NICE = 10


def _lower_priority(nice: int) -> str:
    """Put the calling thread below everything else: SCHED_IDLE where Linux allows it (it runs
    only on a core nothing else wants), else `nice` more; says which."""
    thread = threading.get_native_id()  # Linux: a thread has its own policy and nice value
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
        return "SCHED_IDLE"
    with contextlib.suppress(AttributeError, OSError):  # not on every OS: then the process's priority
        os.setpriority(os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + nice, 19))
        return f"nice +{nice}"
    return "the process's"


class ShadowModel(Protocol):
    @property
    def version(self) -> str: ...

    def predict(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...


class ShadowSink(Protocol):
    def log_shadow_many(self, records: Sequence[Mapping[str, Any]]) -> None: ...


@dataclass(frozen=True)
class _Job:
    model: ShadowModel
    role: str
    request_ids: list[str]
    inputs: list[dict[str, Any]]
    created_at: datetime


class ShadowScorer:
    """Scores offered jobs in its own thread and logs them; `offer` never waits."""

    def __init__(
        self,
        sink: ShadowSink,
        *,
        max_queued_rows: int = MAX_QUEUED_ROWS,
        batch_rows: int = BATCH_ROWS,
        batch_wait_s: float = BATCH_WAIT_S,
        chunk_rows: int = CHUNK_ROWS,
        nice: int = SCORER_NICE,
    ):
        self.sink = sink
        self.max_queued_rows = max_queued_rows
        self.batch_rows = batch_rows
        self.batch_wait_s = batch_wait_s
        self.chunk_rows = chunk_rows
        self.nice = nice
        self._jobs: list[_Job] = []
        self._rows = 0  # offered and not yet scored (queued or being scored)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.scored = 0  # rows scored and handed to the sink
        self.dropped = 0  # rows not scored because too many were waiting
        self.failed = 0  # rows whose shadow prediction raised
        self.last_error: str | None = None
        self.priority = "not started"  # how the scorer thread was put below the rest

    def start(self) -> ShadowScorer:
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
        """Queue a shadow score of these rows; False (and counted as dropped) when too many wait."""
        if not inputs:
            return True
        with self._lock:
            if self._rows + len(inputs) > self.max_queued_rows:
                self.dropped += len(inputs)
                return False
            self._jobs.append(_Job(model, role, request_ids, inputs, created_at))
            self._rows += len(inputs)
            full = self._rows >= self.batch_rows
        if full:
            self._wake.set()
        return True

    @property
    def queued(self) -> int:
        return self._rows

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every row offered so far is scored and handed to the sink (or failed)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while self._rows:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.005)
        return True

    def stop(self, timeout: float = 60.0) -> None:
        """Score what is queued, then stop (before the sink closes)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        from threadpoolctl import threadpool_limits

        # OpenMP's thread count is per calling thread: unlimited, a model load here took 3-4x
        # longer and a small predict spins threads a background job should not have.
        threadpool_limits(limits=1)
        self.priority = _lower_priority(self.nice)
        while True:
            self._wake.wait(self.batch_wait_s)
            self._wake.clear()
            stopping = self._stopping
            self._round()
            if stopping and not self._jobs:
                return

    def _round(self) -> None:
        with self._lock:
            jobs, self._jobs = self._jobs, []
        by_model: dict[int, list[_Job]] = {}
        for job in jobs:
            by_model.setdefault(id(job.model), []).append(job)
        for group in by_model.values():
            chunk: list[_Job] = []
            rows = 0
            for job in group:
                chunk.append(job)
                rows += len(job.inputs)
                if rows >= self.chunk_rows:
                    self._score(chunk)
                    chunk, rows = [], 0
            if chunk:
                self._score(chunk)

    def _score(self, jobs: list[_Job]) -> None:
        model = jobs[0].model
        inputs = [row for job in jobs for row in job.inputs]
        started = time.perf_counter()
        try:
            outputs = model.predict(inputs)
        except Exception as exc:  # noqa: BLE001 - a failing shadow must never touch serving
            self.failed += len(inputs)
            self._done(len(inputs))
            if self.last_error is None:
                log.error(
                    "shadow scoring with model %s failed: %s: %s", model.version, type(exc).__name__, exc
                )
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        latency_ms = (time.perf_counter() - started) * 1000
        ids = [rid for job in jobs for rid in job.request_ids]
        n = len(ids)
        records = ShadowRows(
            ids,
            [job.role for job in jobs for _ in job.request_ids],
            [job.created_at for job in jobs for _ in job.request_ids],
            [model.version] * n,
            outputs[:n],
            [latency_ms] * n,
        )
        self.sink.log_shadow_many(records)
        self.scored += len(records)
        self._done(len(inputs))

    def _done(self, rows: int) -> None:
        with self._lock:
            self._rows -= rows
