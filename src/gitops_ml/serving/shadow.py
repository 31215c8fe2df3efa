"""Shadow scoring: the model that did not answer a request scores it too, off the response path.

The request path only appends the job to a bounded list (when full the job is dropped and counted,
never waited for). A task on the event loop scores what has collected, in chunks of one model,
once `batch_rows` rows are waiting or `batch_wait_s` after the last round, yielding to requests
between chunks, and hands the scores to the prediction logger as shadow records. So production
and the challenger are both scored on the same requests (`PredictionStore.paired`) while callers
wait for one model only.

On the event loop rather than in a thread: a scoring thread contends with the event loop for the
GIL, which cost callers 44-176% of p50 (measured, docs/benchmarks.md); chunked on the loop, the
work is the shadow model's CPU and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gitops_ml.prediction_store.codecs import ShadowRows

log = logging.getLogger(__name__)

# Rows waiting for their shadow score; beyond this the shadow falls behind and drops (counted).
MAX_QUEUED_ROWS = 50_000
# Rows scored per call (a model call's fixed cost dominates at one row), and how long rows may wait
# for a round; a chunk is small enough that requests arriving meanwhile wait about a millisecond
# (128 rows held them ~10 ms: a paced load's p50 doubled, 32 rows left it within noise; docs/benchmarks.md).
BATCH_ROWS = 512
BATCH_WAIT_S = 0.25
CHUNK_ROWS = 32


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
    """Scores offered jobs on the event loop, off the response path, and logs them; `offer` never waits."""

    def __init__(
        self,
        sink: ShadowSink,
        *,
        max_queued_rows: int = MAX_QUEUED_ROWS,
        batch_rows: int = BATCH_ROWS,
        batch_wait_s: float = BATCH_WAIT_S,
        chunk_rows: int = CHUNK_ROWS,
    ):
        self.sink = sink
        self.max_queued_rows = max_queued_rows
        self.batch_rows = batch_rows
        self.batch_wait_s = batch_wait_s
        self.chunk_rows = chunk_rows
        self._jobs: list[_Job] = []
        self._rows = 0  # offered and not yet scored (queued or being scored)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.scored = 0  # rows scored and handed to the logger
        self.dropped = 0  # rows not scored because too many were waiting
        self.failed = 0  # rows whose shadow prediction raised
        self.last_error: str | None = None

    def start(self) -> ShadowScorer:
        """Start the scoring task (call on the running event loop)."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="shadow-scorer")
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
        if self._rows + len(inputs) > self.max_queued_rows:
            self.dropped += len(inputs)
            return False
        self._jobs.append(_Job(model, role, request_ids, inputs, created_at))
        self._rows += len(inputs)
        if self._rows >= self.batch_rows and self._wake is not None:
            self._wake.set()
        return True

    @property
    def queued(self) -> int:
        return self._rows

    def flush(self, timeout: float = 30.0) -> bool:
        """From another thread: wait until every row offered so far is scored and logged (or failed)."""
        deadline = time.monotonic() + timeout
        while self._rows:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    async def stop(self) -> None:
        """Score what is queued, then stop (before the logger closes)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._jobs:
            await self._round()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.batch_wait_s)
            self._wake.clear()
            await self._round()

    async def _round(self) -> None:
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
                    await asyncio.sleep(0)  # let the requests that arrived meanwhile through
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
            self._rows -= len(inputs)
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
        self._rows -= len(inputs)
