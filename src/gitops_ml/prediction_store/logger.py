"""`BatchingLogger`: prediction records written in the background, in batches.

The request path only enqueues (one `SimpleQueue.put` per request, whatever its row count: the
serving path's rows by column, `PredictionRows`); a writer thread drains the queue, one
transaction per batch, so a slow disk never slows a response.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from gitops_ml.prediction_store.codecs import JsonRows, PredictionRows, ShadowRows
from gitops_ml.prediction_store.repository import PredictionStore

log = logging.getLogger(__name__)


class _Flush:
    """A marker in the queue: everything enqueued before it is written when `done` is set."""

    def __init__(self) -> None:
        self.done = threading.Event()


class _Shadows(list[Mapping[str, Any]]):
    """Shadow scores (`PredictionStore.log_shadow_many`), queued beside the served predictions."""


_STOP = object()


class BatchingLogger:
    """Writes prediction records in the background, `batch_size` rows per transaction.

    `log`/`log_many` only enqueue (the request path never waits on the database). The writer
    thread drains the queue: a batch is written when it is full or `flush_interval_s` after its
    first record. A failing database is retried with back-off; records are kept, not dropped,
    until `close()` gives up on them (logged with their count).
    """

    def __init__(
        self,
        store: PredictionStore,
        batch_size: int = 256,
        flush_interval_s: float = 0.2,
        *,
        max_retry_delay_s: float = 5.0,
    ):
        self.store = store
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_retry_delay_s = max_retry_delay_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = False
        self.written = 0
        self.dropped = 0
        self.shadow_written = 0
        self.shadow_dropped = 0
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> BatchingLogger:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="prediction-logger", daemon=True)
                self._thread.start()
        return self

    def __enter__(self) -> BatchingLogger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log(self, record: Mapping[str, Any]) -> None:
        self._queue.put(record)

    def log_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        if records:
            self._queue.put(list(records))

    def log_rows(self, rows: PredictionRows | JsonRows) -> None:
        """Enqueue predictions by column (the serving path: no dict per row; the log worker's rows
        arrive with their JSON already encoded)."""
        if len(rows):
            self._queue.put(rows)

    def log_shadow_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Enqueue the shadow scores of requests another model answered (written like predictions);
        `ShadowRows` are kept by column, as `log_rows` keeps predictions."""
        if records:
            self._queue.put(records if isinstance(records, ShadowRows) else _Shadows(records))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything logged before this call is written (or given up). True if done."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty()
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything still queued, then stop the thread."""
        with self._lock:
            thread, self._closing = self._thread, True
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.error(
                "prediction logger did not stop within %ss; %s records may be unwritten",
                timeout,
                self._queue.qsize(),
            )

    # -- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            pending: list[Mapping[str, Any]] = []
            shadows: list[Mapping[str, Any]] = []
            # the serving path's rows by column, one list per kind, each written as one batch
            columns: dict[type[PredictionRows | JsonRows | ShadowRows], list[Any]] = {}
            rows = 0
            markers: list[_Flush] = []
            item = self._queue.get()  # block: nothing to do until something arrives
            deadline = time.monotonic() + self.flush_interval_s
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, _Flush):
                    markers.append(item)
                elif isinstance(item, PredictionRows | JsonRows | ShadowRows):
                    columns.setdefault(type(item), []).append(item)
                    rows += len(item)
                elif isinstance(item, _Shadows):
                    shadows.extend(item)
                    rows += len(item)
                elif isinstance(item, list):
                    pending.extend(item)
                    rows += len(item)
                else:
                    pending.append(item)
                    rows += 1
                if stop or markers or rows >= self.batch_size:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            for kind, parts in columns.items():
                self._write(kind.concat(parts), shadow=kind is ShadowRows)
            for start in range(0, len(pending), self.batch_size):
                self._write(pending[start : start + self.batch_size])
            for start in range(0, len(shadows), self.batch_size):
                self._write(shadows[start : start + self.batch_size], shadow=True)
            for marker in markers:
                marker.done.set()

    def _write(self, batch: Sequence[Mapping[str, Any]], *, shadow: bool = False) -> None:
        write = self.store.log_shadow_many if shadow else self.store.log_many
        delay = 0.05
        attempts = 0
        while True:
            try:
                write(batch)
                self._count(shadow, written=len(batch))
                return
            except SQLAlchemyError as exc:
                transient = isinstance(exc, OperationalError) or (
                    isinstance(exc, DBAPIError) and exc.connection_invalidated
                )
                if not transient:
                    break  # a data problem, not an outage: isolate the bad rows below
                attempts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self._closing and attempts >= 3:
                    self._count(shadow, dropped=len(batch))
                    log.error("prediction logger: dropping %d records at shutdown: %s", len(batch), exc)
                    return
                log.warning("prediction logger: write failed (%s); retrying in %.2fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay_s)
            except (ValueError, TypeError):
                break
        # Row by row, so one unstorable record does not cost the rest of its batch.
        for record in batch:
            try:
                write([record])
                self._count(shadow, written=1)
            except Exception as exc:  # noqa: BLE001 - keep the writer alive whatever one record holds
                self._count(shadow, dropped=1)
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("prediction logger: dropped record %r: %s", record.get("request_id"), exc)

    def _count(self, shadow: bool, *, written: int = 0, dropped: int = 0) -> None:
        if shadow:
            self.shadow_written += written
            self.shadow_dropped += dropped
        else:
            self.written += written
            self.dropped += dropped
