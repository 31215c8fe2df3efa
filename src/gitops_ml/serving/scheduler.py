"""Micro-batching for small requests, a small pool of predict threads for big ones.

Small requests: a scheduler task collects whatever requests are waiting while the previous call
ran and scores them as one call on the event loop (a model call's fixed cost dominates at one row).
It adds no waiting time: an idle server predicts a lone request immediately.

Big requests (more than `inline_max_rows` rows) each go to a pool of predict threads and are
not awaited by the scheduler task, so two concurrent batch requests are predicted at the same
time on two cores (the fast path's tree walk and scikit-learn's Cython predict release the GIL),
while the event loop keeps parsing and validating the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from gitops_ml.record_columns import Records

Answers = Sequence[dict[str, Any]]  # a model's: ModelAnswers (by column) or a list of dicts

# Rows merged into one model call from concurrent small requests.
MICRO_BATCH_MAX_ROWS = 256
# Calls up to this many rows run on the event loop itself; bigger ones in a predict thread.
# Measured (benchmarks/inline_threshold_bench.py, docs/benchmarks.md 2026-12-02 13:49-14:05): 2
# clients of n-row requests, thread / inline rate 0.65-0.89 at 16-128 rows, 1.00-1.06 at 256,
# 0.97-1.02 at 512-1000; so a hand-off stops costing at 256 rows, the micro-batch size (merged
# single-record calls stay inline). Those runs had about one core free (two threads of a GIL-free
# hash ran 1.08x one), so the gain a free second core gives big calls was not seen there.
INLINE_MAX_ROWS = MICRO_BATCH_MAX_ROWS
# `gitops-ml serve --workers N` sets this, so that N processes share the cores between them.
ENV_WORKERS = "GITOPS_ML_SERVE_WORKERS"


def usable_cores() -> int:
    """The cores this process may run on (its affinity on Linux, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def predict_threads() -> int:
    """Predict threads for this process: the cores it may use, divided among the `serve` workers."""
    cores = usable_cores()
    try:
        workers = max(1, int(os.environ.get(ENV_WORKERS, "1")))
    except ValueError:
        workers = 1
    return max(1, cores // workers)


def _one_openmp_thread() -> None:
    # threadpoolctl's limit in the app's lifespan holds for the thread that set it only: a new
    # thread's OpenMP calls (scikit-learn's predict over 64 rows) would spin one thread per core.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


class Scorer(Protocol):
    def predict(self, records: Records) -> Answers: ...


@dataclass
class _Job:
    model: Scorer
    records: Records
    future: asyncio.Future[Answers]


class PredictionScheduler:
    """Scores small requests merged, one call at a time, on the event loop; big ones concurrently
    in `threads` predict threads (default: `predict_threads()`)."""

    def __init__(
        self,
        max_rows: int = MICRO_BATCH_MAX_ROWS,
        inline_max_rows: int = INLINE_MAX_ROWS,
        threads: int | None = None,
    ):
        self.max_rows = max_rows
        self.inline_max_rows = inline_max_rows
        self.threads = threads if threads is not None else predict_threads()
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix="predict", initializer=_one_openmp_thread
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="prediction-scheduler")

    async def stop(self) -> None:
        """Drain: what is queued is still scored, and calls in the threads are awaited."""
        if self._task is not None:
            # the task only ever waits in queue.get (inline calls do not yield), so no call is cut
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue is not None:
            while not self._queue.empty():
                self._dispatch(self._take())
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def predict(self, model: Scorer, records: Records) -> Answers:
        assert self._queue is not None and self._task is not None, "scheduler not started"
        future: asyncio.Future[Answers] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(model, records, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            self._dispatch([first, *self._take_more(len(first.records))])

    def _take(self) -> list[_Job]:
        assert self._queue is not None
        first = self._queue.get_nowait()
        return [first, *self._take_more(len(first.records))]

    def _take_more(self, rows: int) -> list[_Job]:
        """Small jobs queued meanwhile, to merge with one of `rows` rows (none if that one is big)."""
        assert self._queue is not None
        jobs: list[_Job] = []
        if rows > self.inline_max_rows:
            return jobs
        while rows < self.max_rows and not self._queue.empty():
            job = self._queue.get_nowait()
            if len(job.records) > self.inline_max_rows:
                self._dispatch([job])  # a big one is not merged: it goes to its thread now
                continue
            jobs.append(job)
            rows += len(job.records)
        return jobs

    def _dispatch(self, jobs: list[_Job]) -> None:
        by_model: dict[int, list[_Job]] = {}
        for job in jobs:
            by_model.setdefault(id(job.model), []).append(job)
        for group in by_model.values():
            rows = sum(len(job.records) for job in group)
            if rows <= self.inline_max_rows:
                _run_inline(group)
            else:
                task = asyncio.get_running_loop().create_task(self._run_in_thread(group))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)

    async def _run_in_thread(self, jobs: list[_Job]) -> None:
        records = [job.records for job in jobs]
        loop = asyncio.get_running_loop()
        _settle_all(jobs, await loop.run_in_executor(self._executor, _outcomes, jobs[0].model, records))


def _run_inline(jobs: list[_Job]) -> None:
    _settle_all(jobs, _outcomes(jobs[0].model, [job.records for job in jobs]))


def _outcomes(model: Scorer, requests: list[Records]) -> list[Answers | Exception]:
    """Each request's predictions or error: one call for all, then one per request if that fails,
    so one bad request never fails its neighbours."""
    try:
        # one request keeps its own sequence (a batch's columns); merged ones become one list
        merged = requests[0] if len(requests) == 1 else [r for records in requests for r in records]
        outputs = model.predict(merged)
    except Exception as exc:  # noqa: BLE001 - isolate, below
        if len(requests) == 1:
            return [exc]
    else:
        out: list[Answers | Exception] = []
        start = 0
        for records in requests:
            out.append(outputs[start : start + len(records)])
            start += len(records)
        return out
    results: list[Answers | Exception] = []
    for records in requests:
        try:
            results.append(model.predict(records))
        except Exception as exc:  # noqa: BLE001 - this request's own error
            results.append(exc)
    return results


def _settle_all(jobs: list[_Job], outcomes: list[Answers | Exception]) -> None:
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, Exception):
            _settle(job.future, error=outcome)
        else:
            _settle(job.future, result=outcome)


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
