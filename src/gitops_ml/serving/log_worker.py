"""The prediction log worker: a child process beside each server process that writes every served
prediction to the store and scores the shadow, so neither shares the server's GIL.

Why a process (measured, docs/benchmarks.md): inside the server, the writer thread's executemany
gives up and retakes the GIL around every row, and the shadow model's CPU ran beside the event
loop; both lengthened responses. Now the request path only enqueues (`log_rows`, O(1)); a feeder
thread sends what has collected every `send_interval_s` as one frame over a pipe; the child writes
it (`BatchingLogger`: one transaction per batch, retried while the store is down) and scores the
shadow in a thread at a lower CPU priority (`ShadowScorer`). The child loads a shadow model
itself, from its pointer, through the same checked loader as the server (sha256, allow-list,
smoke test), and keeps it while the pointer stays the same.

If the child dies, the server keeps serving: the feeder starts a new child and resends the frame
it could not deliver; rows the dead child had received but not written are counted as dropped and
`last_error` says so. Otherwise logged = served, exactly.

The frames are pickles of this package's own objects, sent by a process to the child it started
(never bytes from a client or a file).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_ml.config import Settings
from gitops_ml.errors import GitopsMLError
from gitops_ml.prediction_store.codecs import EncodedRows, JsonRows, PredictionRows, encode_rows
from gitops_ml.registry.pointer import ProductionPointer
from gitops_ml.serving.shadow import MAX_QUEUED_ROWS

if TYPE_CHECKING:  # the worker imports the model loader only when it loads a model
    from gitops_ml.serving.model_holder import ServedChallenger, ServedModel

log = logging.getLogger(__name__)

# How long the feeder collects requests before sending them as one frame (one pickle, one write).
SEND_INTERVAL_S = 0.02
# How often the child reports its counts while they change.
REPORT_INTERVAL_S = 0.05
START_TIMEOUT_S = 120.0
WORKER_NICE = 5
MAX_RESTART_DELAY_S = 30.0
PIPE_BYTES = 1 << 20


class LogWorkerError(GitopsMLError):
    """The prediction log worker could not be started."""


@dataclass(frozen=True)
class ModelRef:
    """A model the worker may shadow-score with: the one this pointer names, loaded and checked."""

    pointer: ProductionPointer

    @property
    def key(self) -> str:
        return f"{self.pointer.version}@{self.pointer.sha256}"


@dataclass(frozen=True)
class ShadowOrder:
    """The rows (`indices` into the request's PredictionRows) that `model` scores too, logged as `role`."""

    model: ModelRef
    role: str
    indices: tuple[int, ...]


@dataclass(frozen=True)
class WorkerConfig:
    store_url: str
    settings: Settings  # the server's: the shadow model is served as the server would serve it
    cache_dir: Path
    batch_size: int
    flush_interval_s: float
    max_shadow_rows: int = MAX_QUEUED_ROWS


@dataclass
class LogCounts:
    """What a worker has done with what it received (its own report)."""

    written: int = 0
    dropped: int = 0
    shadow_scored: int = 0
    shadow_written: int = 0
    shadow_dropped: int = 0
    shadow_failed: int = 0
    last_error: str | None = None
    shadow_ready: tuple[str, ...] = ()  # versions of the shadow models loaded (the current worker's)

    def plus(self, other: LogCounts) -> LogCounts:
        """Sums, the newer error, and the newer worker's models."""
        total = LogCounts(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in fields(self)
                if f.name in _SUMS
            }
        )
        total.last_error = other.last_error or self.last_error
        total.shadow_ready = other.shadow_ready
        return total


_SUMS = ("written", "dropped", "shadow_scored", "shadow_written", "shadow_dropped", "shadow_failed")


class _Flush:
    def __init__(self, shadow: bool) -> None:
        self.shadow = shadow
        self.ok = False
        self.done = threading.Event()

    def finish(self, ok: bool) -> None:
        self.ok = ok
        self.done.set()


_STOP = object()


@dataclass(frozen=True)
class _Preload:
    model: ModelRef


# When worker_main returns, everything is written, committed and reported: the worker exits at once,
# skipping the interpreter's teardown of pandas, SQLAlchemy, ..., which every server's shutdown waits
# for (measured on a busy 2-core machine: close 0.09 s -> 0.04 s median; 0.5-5 s before the gc.freeze
# in worker_main, `_end` killing it at 5 s). An exception still ends it the normal way, with its
# traceback and exit code 1.
_WORKER_ENTRY = (
    "import os, sys; from gitops_ml.serving.log_worker import worker_main; "
    "worker_main(*map(int, sys.argv[1:])); sys.stderr.flush(); os._exit(0)"
)


def _end(child: _Child) -> None:
    """Close a worker's pipes, the one place they are closed (the reader thread only reads), and
    see it exit: killed if it does not within 5 s (it could not start, or did not finish in time)."""
    for connection in (child.send, child.receive):
        with contextlib.suppress(OSError):
            connection.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.process.wait(5)
    if child.process.poll() is None:
        child.process.kill()
        child.process.wait(5)


@dataclass
class _Child:
    """One worker process and what the server sent it."""

    process: subprocess.Popen[bytes]
    send: Connection  # frames to the child
    receive: Connection  # reports from the child
    counts: LogCounts = field(default_factory=LogCounts)
    sent_rows: int = 0
    sent_shadow_rows: int = 0
    flushes: dict[int, _Flush] = field(default_factory=dict)
    exited: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)


class LogWorker:
    """The server's side of the worker: `log_rows` enqueues, the rest reports and waits."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        send_interval_s: float = SEND_INTERVAL_S,
        start_timeout_s: float = START_TIMEOUT_S,
    ):
        self.config = config
        self.send_interval_s = send_interval_s
        self.start_timeout_s = start_timeout_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._child: _Child | None = None
        self._past = LogCounts()  # children that exited, their losses counted as dropped
        self._lock = threading.Lock()
        self._feeder: threading.Thread | None = None
        self._tokens = 0
        self._refs: dict[str, ModelRef] = {}
        self._preloads: list[ModelRef] = []  # sent again to a worker that replaces a dead one
        self._restarts = 0
        self._error: str | None = None
        self.shadow_offered = 0  # rows the server asked to be shadow-scored (accepted)
        self._shadow_refused = 0  # ... and refused because too many were outstanding
        self._shadow_settled = 0  # accepted rows scored, failed, dropped or lost (the reader's sum)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LogWorker:
        self._child = self._spawn()
        self._feeder = threading.Thread(target=self._feed, name="prediction-log-feeder", daemon=True)
        self._feeder.start()
        return self

    def __enter__(self) -> LogWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 60.0) -> None:
        """Send everything queued, let the worker write it and score its shadow rows, then stop it."""
        feeder = self._feeder
        if feeder is None:
            return
        self._queue.put(_STOP)
        feeder.join(timeout)
        self._feeder = None
        child = self._child
        if feeder.is_alive() or child is None:
            log.error(
                "prediction log worker did not stop within %ss; %s items unsent", timeout, self._queue.qsize()
            )
            return
        if not child.stopped.wait(timeout):
            log.error("prediction log worker did not finish within %ss; stopping it", timeout)
        _end(child)

    # -- the request path --------------------------------------------------------------------

    def log_rows(self, rows: PredictionRows, shadow: Sequence[ShadowOrder] = ()) -> None:
        """Enqueue one request's predictions, and the shadow scores it needs (never waits)."""
        if shadow:
            wanted = sum(len(order.indices) for order in shadow)
            if self.shadow_offered - self._shadow_settled + wanted > self.config.max_shadow_rows:
                self._shadow_refused += wanted
                shadow = ()
            else:
                self.shadow_offered += wanted
        if len(rows):
            self._queue.put((rows, tuple(shadow)))

    def preload(self, model: ModelRef) -> None:
        """Have the worker load a shadow model now (a challenger just appeared), not at its first
        request: a load takes seconds of CPU, at the scorer's low priority."""
        if model not in self._preloads:
            self._preloads.append(model)
        self._queue.put(_Preload(model))

    def flush(self, timeout: float | None = 30.0, *, shadow: bool = True) -> bool:
        """Block until everything logged before this call is written (with `shadow`, its shadow
        scores too). False on a timeout or if the worker died meanwhile."""
        if self._feeder is None:
            return self._queue.empty()
        marker = _Flush(shadow)
        self._queue.put(marker)
        return marker.done.wait(timeout) and marker.ok

    # -- counts ------------------------------------------------------------------------------

    @property
    def counts(self) -> LogCounts:
        with self._lock:
            current = self._child.counts if self._child is not None else LogCounts()
            total = self._past.plus(current)
        total.shadow_dropped += self._shadow_refused
        total.last_error = total.last_error or self._error
        return total

    @property
    def written(self) -> int:
        return self.counts.written

    @property
    def dropped(self) -> int:
        return self.counts.dropped

    @property
    def last_error(self) -> str | None:
        return self.counts.last_error

    @property
    def shadow_queued(self) -> int:
        """Shadow rows accepted and not yet scored, failed or lost."""
        return self.shadow_offered - self._shadow_settled

    @property
    def restarts(self) -> int:
        """Workers started again after one exited."""
        return self._restarts

    def model_ref(self, pointer: ProductionPointer) -> ModelRef:
        """One ModelRef per model (so a frame pickles its pointer once, however many requests name it)."""
        key = f"{pointer.version}@{pointer.sha256}"
        ref = self._refs.get(key)
        if ref is None:
            ref = self._refs[key] = ModelRef(pointer)
        return ref

    @property
    def pid(self) -> int | None:
        """The current worker process (a test may kill it)."""
        return self._child.process.pid if self._child is not None else None

    # -- the feeder thread -------------------------------------------------------------------

    def _feed(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                self._replace_if_exited()
                continue
            time.sleep(self.send_interval_s)  # let the requests of the next few ms join this frame
            items = [first]
            with contextlib.suppress(queue.Empty):
                while True:
                    items.append(self._queue.get_nowait())
            batch: list[tuple[PredictionRows, tuple[ShadowOrder, ...]]] = []
            for item in items:
                if isinstance(item, tuple):
                    batch.append(item)
                    continue
                if batch:
                    self._send_rows(batch)
                    batch = []
                if item is _STOP:
                    self._deliver(("stop",))
                    return
                if isinstance(item, _Preload):
                    self._deliver(("load", item.model))
                else:
                    self._send_flush(item)
            if batch:
                self._send_rows(batch)

    def _send_rows(self, batch: list[tuple[PredictionRows, tuple[ShadowOrder, ...]]]) -> None:
        rows = sum(len(r) for r, _ in batch)
        shadow = sum(len(o.indices) for _, orders in batch for o in orders)
        # JSON, not pickled dicts, for rows nothing scores in the worker (the shadow model needs
        # the values themselves): less of the server's CPU, and the worker builds no dict
        frame = [(rows if orders else encode_rows(rows), orders) for rows, orders in batch]
        try:
            child = self._deliver(("rows", frame))
        except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError) as exc:
            # a value that cannot cross to the worker: those rows are lost, counted and said; the
            # feeder (and every later request's log) goes on
            self._error = f"prediction log: {rows} rows not sent to the worker: {type(exc).__name__}: {exc}"
            log.error("%s", self._error)
            self._add_to_past(LogCounts(dropped=rows, shadow_dropped=shadow))
            return
        child.sent_rows += rows
        child.sent_shadow_rows += shadow

    def _send_flush(self, marker: _Flush) -> None:
        self._tokens += 1
        self._deliver(("flush", self._tokens, marker.shadow), flush=marker)

    def _deliver(self, message: tuple[Any, ...], flush: _Flush | None = None) -> _Child:
        """Send one frame to the current worker, replacing a dead one first; the child it reached.
        A flush marker is registered with the child before the send (its answer may come at once);
        one that a dying child failed is not sent again."""
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        while True:
            self._replace_if_exited()
            child = self._child
            assert child is not None
            if flush is not None:
                if flush.done.is_set():
                    return child
                child.flushes[message[1]] = flush
            try:
                child.send.send_bytes(payload)
                return child
            except OSError:
                child.exited.wait(5)  # the reader sees the end of the pipe; then it is replaced

    def _replace_if_exited(self) -> None:
        child = self._child
        if child is None or not (child.exited.is_set() or child.process.poll() is not None):
            return
        child.exited.wait(5)  # the reader has read the last report
        _end(child)
        code = child.process.returncode
        counts = child.counts
        lost = max(child.sent_rows - counts.written - counts.dropped, 0)
        settled = counts.shadow_scored + counts.shadow_dropped + counts.shadow_failed
        lost_shadow = max(child.sent_shadow_rows - settled, 0)
        message = (
            f"prediction log worker (pid {child.process.pid}) exited with code {code}; "
            f"{lost} predictions and {lost_shadow} shadow rows it had received were not written"
        )
        log.error("%s; starting a new one", message)
        for marker in child.flushes.values():
            marker.finish(False)
        self._add_to_past(
            LogCounts(
                written=counts.written,
                dropped=counts.dropped + lost,
                shadow_scored=counts.shadow_scored,
                shadow_written=counts.shadow_written,
                shadow_dropped=counts.shadow_dropped + lost_shadow,
                shadow_failed=counts.shadow_failed,
                last_error=counts.last_error,
            ),
            replacing=True,
        )
        self._error = message
        delay = 0.0
        while self._child is None:
            time.sleep(delay)
            try:
                new = self._spawn()
            except LogWorkerError as exc:
                self._error = f"{message}; restart failed: {exc}"
                log.error("%s", self._error)
                delay = min(max(delay * 2, 1.0), MAX_RESTART_DELAY_S)
                continue
            with self._lock:
                self._child = new
        self._restarts += 1
        for model in self._preloads[-4:]:  # the newest models: the ones still served
            self._queue.put(_Preload(model))

    def _add_to_past(self, counts: LogCounts, *, replacing: bool = False) -> None:
        """Counts that no longer change (an exited worker's, rows that never reached one); with
        `replacing`, the exited worker's counts move to the past in the same step (never counted
        twice, never missing)."""
        with self._lock:
            self._past = self._past.plus(counts)
            if replacing:
                self._child = None
            self._recount_settled()

    def _recount_settled(self) -> None:
        # under self._lock: accepted shadow rows scored, failed, dropped or lost, all workers
        current = self._child.counts if self._child is not None else LogCounts()
        total = self._past.plus(current)
        self._shadow_settled = total.shadow_scored + total.shadow_failed + total.shadow_dropped

    # -- the child's side, seen from here -----------------------------------------------------

    def _spawn(self) -> _Child:
        """Start a worker and wait until it has opened the store.

        A fresh interpreter running this module (not multiprocessing's spawn, which re-imports the
        caller's main script: a serving script without a main guard would run again in the child)."""
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # A frame (~400 KB for 1000 rows) in one write, not 64 KB at a time with the feeder
        # blocked and woken between them (Linux; unprivileged up to /proc/sys/fs/pipe-max-size)
        with contextlib.suppress(AttributeError, OSError):
            fcntl.fcntl(to_child_w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_ENTRY, str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        send, receive = Connection(to_child_w, readable=False), Connection(from_child_r, writable=False)
        child = _Child(process, send, receive)
        try:
            send.send_bytes(pickle.dumps(self.config, protocol=pickle.HIGHEST_PROTOCOL))
            deadline = time.monotonic() + self.start_timeout_s
            while not receive.poll(0.1):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise EOFError
            message = pickle.loads(receive.recv_bytes())
        except (EOFError, OSError) as exc:
            _end(child)
            raise LogWorkerError(
                f"the prediction log worker did not start (exit code {process.returncode}); see its log above"
            ) from exc
        if message[0] != "ready":
            _end(child)
            raise LogWorkerError(f"the prediction log worker could not start: {message[1]}")
        threading.Thread(target=self._read, args=(child,), name="prediction-log-reader", daemon=True).start()
        return child

    def _read(self, child: _Child) -> None:
        while True:
            try:
                message = pickle.loads(child.receive.recv_bytes())
            except (EOFError, OSError):
                break
            kind, counts = message[0], message[-1]
            with self._lock:
                child.counts = counts
                self._recount_settled()
            if kind == "flushed":
                marker = child.flushes.pop(message[1], None)
                if marker is not None:
                    marker.finish(True)
            elif kind == "stopped":
                child.stopped.set()
        # not closed here: `_end` closes both ends (one owner; stop() may be closing them now)
        child.exited.set()


def preload_shadow_models(
    logger: LogWorker, challenger: ServedChallenger, production: ServedModel | None
) -> None:
    """A challenger was loaded (`ModelHolder.on_challenger`): the worker loads the models it will
    shadow-score with, the challenger, and production too in canary mode (it scores the rows the
    challenger answers)."""
    logger.preload(logger.model_ref(challenger.served.pointer))
    if challenger.pointer.mode == "canary" and production is not None:
        logger.preload(logger.model_ref(production.pointer))


# -- the worker process -------------------------------------------------------------------------


class _LazyModel:
    """A shadow model loaded on first use, in the scorer's thread (a load takes about a second)."""

    def __init__(self, ref: ModelRef, config: WorkerConfig) -> None:
        self.ref = ref
        self.config = config
        self._served: Any = None
        self._error: Exception | None = None
        self._lock = threading.Lock()  # the preloading thread and the scorer load it once

    @property
    def version(self) -> str:
        return self.ref.pointer.version

    @property
    def loaded(self) -> bool:
        return self._served is not None

    def load(self) -> Any:
        with self._lock:
            return self._load()

    def preload(self) -> None:
        """Load now, in a thread at the worker's normal priority: a load is seconds of imports and
        checks that the scorer's low priority would stretch out on a busy machine (measured 13 s)."""

        def run() -> None:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1)  # per calling thread, for OpenMP
            with contextlib.suppress(Exception):  # a refusal is said when its rows fail to score
                self.load()

        threading.Thread(target=run, name="shadow-model-loader", daemon=True).start()

    def _load(self) -> Any:
        if self._served is None:
            if self._error is not None:
                raise self._error  # refused once: not reloaded for every chunk
            from gitops_ml.registry.production import load_pointed_model
            from gitops_ml.serving.model_holder import serve_model

            try:
                loaded = load_pointed_model(self.ref.pointer, self.config.cache_dir)
                self._served = serve_model(loaded, self.config.settings)
            except Exception as exc:
                self._error = exc
                raise
        return self._served

    def predict(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.load().predict(records)


def worker_main(frames_fd: int, reports_fd: int) -> None:
    """The worker process: its config first, then write what arrives, score its shadow orders and
    report counts; on "stop", or when the server's end of the pipe closes, write everything and exit."""
    frames, reports = Connection(frames_fd, writable=False), Connection(reports_fd, readable=False)
    config: WorkerConfig = pickle.loads(frames.recv_bytes())
    # Stopped by the server, after it has sent everything: a Ctrl-C or SIGTERM sent to the whole
    # process group must not kill the worker before the last rows are written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s prediction-log-worker: %(message)s"
    )
    from threadpoolctl import threadpool_limits

    from gitops_ml.prediction_store.logger import BatchingLogger
    from gitops_ml.prediction_store.repository import PredictionStore
    from gitops_ml.serving.shadow import ShadowScorer

    threadpool_limits(limits=1)
    # What is imported lives as long as the worker: out of the collector's sight, a full collection
    # (started by the rows a frame allocates) no longer walks pandas' and SQLAlchemy's objects.
    gc.freeze()
    # Below the server (every thread started here inherits it): on a busy core callers go first;
    # the writer still gets the CPU it needs, and the shadow scorer goes lower again.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    send_lock = threading.Lock()

    def report(*message: Any) -> None:
        with send_lock:
            reports.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    try:
        store = PredictionStore(config.store_url, create=False)
    except Exception as exc:  # noqa: BLE001 - said to the server, which refuses to start
        report("failed", f"{type(exc).__name__}: {exc}")
        return
    logger = BatchingLogger(store, config.batch_size, config.flush_interval_s).start()
    shadow = ShadowScorer(logger, max_queued_rows=config.max_shadow_rows).start()
    models: dict[str, _LazyModel] = {}

    def model_of(ref: ModelRef) -> _LazyModel:
        model = models.get(ref.key)
        if model is None:
            model = models[ref.key] = _LazyModel(ref, config)
        return model

    def counts() -> LogCounts:
        return LogCounts(
            written=logger.written,
            dropped=logger.dropped,
            shadow_scored=shadow.scored,
            shadow_written=logger.shadow_written,
            shadow_dropped=shadow.dropped,
            shadow_failed=shadow.failed,
            last_error=logger.last_error or shadow.last_error,
            shadow_ready=tuple(m.version for m in list(models.values()) if m.loaded),
        )

    finished = threading.Event()

    def reporter() -> None:
        last = None
        while not finished.wait(REPORT_INTERVAL_S):
            now = counts()
            if now != last:
                report("counts", now)
                last = now

    threading.Thread(target=reporter, name="prediction-log-reporter", daemon=True).start()
    report("ready", os.getpid())
    while True:
        try:
            message = pickle.loads(frames.recv_bytes())
        except (EOFError, OSError):
            break  # the server is gone: write what arrived, then exit
        kind = message[0]
        if kind == "rows":
            # one put per frame and kind, not per request: the writer thread wakes once
            decoded = [r.decode() if isinstance(r, EncodedRows) else r for r, _ in message[1]]
            for kind_of_rows in (JsonRows, PredictionRows):
                parts: list[Any] = [r for r in decoded if type(r) is kind_of_rows]
                if parts:
                    logger.log_rows(kind_of_rows.concat(parts))
            for rows, orders in message[1]:
                for order in orders:
                    shadow.offer(
                        model_of(order.model),
                        order.role,
                        [rows.request_ids[i] for i in order.indices],
                        [rows.inputs[i] for i in order.indices],
                        rows.created_at[order.indices[0]],
                    )
        elif kind == "load":
            model_of(message[1]).preload()
        elif kind == "flush":
            if message[2]:
                shadow.flush(timeout=600)
            logger.flush(timeout=600)
            report("flushed", message[1], counts())
        elif kind == "stop":
            break
    shadow.stop()
    logger.close()
    finished.set()
    store.dispose()
    report("stopped", counts())
