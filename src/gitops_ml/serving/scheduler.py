"""Micro-batching: concurrent small requests scored in one model call.

A scheduler task collects whatever requests are waiting while the previous batch is being
predicted and runs them as one call (a model call's fixed cost dominates at one row). It adds no
waiting time: an idle server predicts a lone request immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

# Rows merged into one model call from concurrent small requests; bigger requests run alone.
MICRO_BATCH_MAX_ROWS = 256
# Calls up to this many rows run on the event loop itself; bigger ones in the worker thread.
INLINE_MAX_ROWS = 1000


class Scorer(Protocol):
    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]: ...


@dataclass
class _Job:
    model: Scorer
    records: list[dict[str, Any]]
    future: asyncio.Future[list[dict[str, Any]]]


class PredictionScheduler:
    """Runs one prediction call at a time, merging the requests that queued up meanwhile."""

    def __init__(self, max_rows: int = MICRO_BATCH_MAX_ROWS, inline_max_rows: int = INLINE_MAX_ROWS):
        self.max_rows = max_rows
        self.inline_max_rows = inline_max_rows
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="prediction-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def predict(self, model: Scorer, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert self._queue is not None, "scheduler not started"
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(model, records, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            rows = len(jobs[0].records)
            while rows < self.max_rows and not self._queue.empty():
                job = self._queue.get_nowait()
                jobs.append(job)
                rows += len(job.records)
            by_model: dict[int, list[_Job]] = {}
            for job in jobs:
                by_model.setdefault(id(job.model), []).append(job)
            for group in by_model.values():
                await self._run_group(loop, group)

    async def _call(
        self, loop: asyncio.AbstractEventLoop, model: Scorer, records: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        # Small calls run on the event loop: handing them to a thread costs more in GIL
        # hand-offs than it saves (measured ~25% more single-record throughput inline). Big
        # batches go to the worker thread so /health and request parsing stay responsive.
        if len(records) <= self.inline_max_rows:
            return model.predict(records)
        return await loop.run_in_executor(self._executor, model.predict, records)

    async def _run_group(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        model = jobs[0].model
        records = [r for job in jobs for r in job.records]
        try:
            outputs = await self._call(loop, model, records)
        except Exception as exc:  # noqa: BLE001 - isolate: one bad request must not fail its neighbours
            if len(jobs) == 1:
                _settle(jobs[0].future, error=exc)
                return
            for job in jobs:
                try:
                    result = await self._call(loop, model, job.records)
                except Exception as job_exc:  # noqa: BLE001
                    _settle(job.future, error=job_exc)
                else:
                    _settle(job.future, result=result)
            return
        start = 0
        for job in jobs:
            end = start + len(job.records)
            _settle(job.future, result=outputs[start:end])
            start = end


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
