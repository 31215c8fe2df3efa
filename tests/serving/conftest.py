"""Fixtures for the serving tests: small models trained on synthetic churn-like rows, artifacts in a
model store under tmp, a production pointer, and a REAL uvicorn server on a free local port."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn

from gitops_ml.config import Settings, load_settings
from gitops_ml.data.generator import FEATURES as GENERATOR_FEATURES
from gitops_ml.data.generator import generate_month
from gitops_ml.processes import free_port
from tests.fixtures.projects import CHURN

FEATURES = list(GENERATOR_FEATURES)


def synth_churn(n: int, seed: int = 0) -> pd.DataFrame:
    """Rows shaped like the churn table (the project's generator), dated January 2026."""
    return generate_month("2026-01", n, seed=seed)


def records_of(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready request records (NaN -> None) for the feature columns."""
    rows = df[FEATURES].astype(object).where(df[FEATURES].notna(), None).to_dict("records")
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()} for row in rows]


def make_settings(**serving: Any) -> Settings:
    """The churn fixture config with absolute paths, a fast estimator and fast reload/flush."""
    base = load_settings(CHURN / "config")
    defaults = {"reload_interval_s": 0.1, "log_flush_interval_s": 0.05, "max_batch_rows": 500}
    return base.model_copy(
        update={
            "dataset": base.dataset.model_copy(update={"contract": CHURN / base.dataset.contract}),
            "estimator": base.estimator.model_copy(update={"params": {"max_iter": 15, "random_state": 0}}),
            "serving": base.serving.model_copy(update={**defaults, **serving}),
        }
    )


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def churn_rows() -> pd.DataFrame:
    return synth_churn(1200, seed=1)


@pytest.fixture(scope="session")
def trained(settings: Settings, churn_rows: pd.DataFrame) -> dict[str, Any]:
    """Two fitted pipelines: v1 and v2 (different learning rate, so their scores differ)."""
    from gitops_ml.training.pipeline import train_model

    other = settings.model_copy(
        update={
            "estimator": settings.estimator.model_copy(
                update={"params": {"max_iter": 15, "learning_rate": 0.3, "random_state": 0}}
            )
        }
    )
    fewer = settings.model_copy(
        update={
            "features": settings.features.model_copy(
                update={"categorical": ["plan", "contract_type", "payment_method"]}
            )
        }
    )
    with one_thread():
        return {
            "v1": train_model(churn_rows, settings).pipeline,
            "v2": train_model(churn_rows, other).pipeline,
            "no_region": train_model(churn_rows, fewer).pipeline,
        }


def one_thread() -> Any:
    """OpenMP spin-waiting on a busy 2-core machine makes small fits many times slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def artifact_metadata(version: str, features: list[str] | None = None) -> Any:
    """What a PR check records with a candidate (registry.artifacts.ModelInfo)."""
    from gitops_ml.registry.artifacts import ModelInfo

    features = features or FEATURES
    numeric = [f for f in features if f in FEATURES[:6]]
    return ModelInfo(
        version=version,
        git_commit="0" * 40,
        config_hash="c" * 64,
        data_hash="d" * 64,
        features=tuple(features),
        numeric_features=tuple(numeric),
        categorical_features=tuple(f for f in features if f not in numeric),
        target="churned",
        task="binary",
        sample_record=records_of(synth_churn(1, seed=99))[0],
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class ModelStoreFixture:
    """A local model store (`<root>/<version>/model.skops`) and a pointer file that names one version."""

    root: Path
    pointer_path: Path
    pipelines: dict[str, Any]

    def publish(self, version: str, pipeline_key: str | None = None) -> dict[str, Any]:
        from gitops_ml.registry.artifacts import save_model

        folder = self.root / version
        if not (folder / "model.skops").exists():
            save_model(self.pipelines[pipeline_key or version], folder, artifact_metadata(version))
        path = folder / "model.skops"
        return {"version": version, "artifact_uri": str(path), "sha256": sha256_of(path)}

    @property
    def history_path(self) -> Path:
        return self.pointer_path.parent / "history.yaml"

    def point_to(
        self, version: str, *, pipeline_key: str | None = None, sha256: str | None = None, record: bool = True
    ) -> None:
        """Move the pointer as promotion does: history entry first (unless `record` is False, a
        hand edit), then the pointer."""
        from gitops_ml.clock import utc_now_text
        from gitops_ml.registry.pointer import (
            HistoryEntry,
            ProductionPointer,
            append_history,
            write_pointer,
        )

        info = self.publish(version, pipeline_key)
        pointer = ProductionPointer(
            version=version,
            artifact_uri=info["artifact_uri"],
            sha256=sha256 or info["sha256"],
            metrics={"roc_auc": 0.8},
            commit="0" * 40,
        )
        if record:
            append_history(
                self.history_path,
                HistoryEntry(
                    action="promote",
                    version=version,
                    previous_version=None,
                    at=utc_now_text(),
                    pointer=pointer,
                ),
            )
        write_pointer(self.pointer_path, pointer)


@pytest.fixture
def model_store(tmp_path: Path, trained: dict[str, Any]) -> ModelStoreFixture:
    return ModelStoreFixture(tmp_path / "model-store", tmp_path / "deploy" / "production.yaml", trained)


@dataclass
class RunningServer:
    url: str
    app: Any
    client: httpx.Client
    db_path: Path

    def flush(self) -> None:
        assert self.app.state.logger.flush(timeout=30)

    def wait_for(
        self, predicate: Callable[[httpx.Response], bool], path: str = "/ready", timeout: float = 20.0
    ) -> httpx.Response:
        """Poll `path` until `predicate(response)`; fail with the last response after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.client.get(path)
            if predicate(response):
                return response
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{path} never satisfied the condition; last: {response.status_code} {response.text}"
                )
            time.sleep(0.05)


class ServerStarter:
    """Starts uvicorn servers in threads with `create_app(...)` (databases under `folder`) and stops
    every one it started at `stop_all`."""

    def __init__(self, folder: Path, model_store: ModelStoreFixture) -> None:
        self.folder = folder
        self.model_store = model_store
        self.started: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def __call__(
        self, settings: Settings | None = None, *, raw_predict: bool = True, **serving: Any
    ) -> RunningServer:
        from gitops_ml.serving.app import create_app

        app_settings = settings or make_settings(**serving)
        db_path = self.folder / f"predictions-{len(self.started)}.db"
        app = create_app(
            app_settings,
            pointer_path=self.model_store.pointer_path,
            store_url=f"sqlite:///{db_path}",
            cache_dir=self.folder / "cache",
            raw_predict=raw_predict,
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.02)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self.started.append((server, thread, client))
        return RunningServer(f"http://127.0.0.1:{port}", app, client, db_path)

    def stop_all(self) -> None:
        for server, thread, client in self.started:
            client.close()
            server.should_exit = True
            thread.join(timeout=30)


@pytest.fixture
def start_server(tmp_path: Path, model_store: ModelStoreFixture) -> Iterator[ServerStarter]:
    """Factory: a server of the test's own (its config, its model store); stopped at teardown."""
    starter = ServerStarter(tmp_path, model_store)
    yield starter
    starter.stop_all()


@pytest.fixture
def own_server(model_store: ModelStoreFixture, start_server: ServerStarter) -> RunningServer:
    """A server of the test's own whose pointer names v1: for a test that changes the server (its
    pointer, its store's labels) or counts everything it logged."""
    model_store.point_to("v1")
    return start_server()


@pytest.fixture(scope="module")
def _shared_servers(
    tmp_path_factory: pytest.TempPathFactory, trained: dict[str, Any]
) -> Iterator[dict[bool, RunningServer]]:
    """The module's servers that only answer (v1, default config), one per `raw_predict`, started
    on first use: each start costs a uvicorn server, a model load and a log worker process."""
    folder = tmp_path_factory.mktemp("shared-server")
    store = ModelStoreFixture(folder / "model-store", folder / "deploy" / "production.yaml", trained)
    store.point_to("v1")
    starter = ServerStarter(folder, store)

    class Servers(dict[bool, RunningServer]):
        def __missing__(self, raw_predict: bool) -> RunningServer:
            running = self[raw_predict] = starter(raw_predict=raw_predict)
            return running

    servers = Servers()
    yield servers
    starter.stop_all()


def _unchanged(running: RunningServer) -> RunningServer:
    """A shared server as every test gets it: v1 from its pointer, no reload error, a live log worker."""
    ready = running.client.get("/ready")
    assert ready.status_code == 200, ready.text
    state = ready.json()
    assert state["model_version"] == "v1" and state["reload_error"] is None, state
    assert state["prediction_log"]["last_error"] is None, state
    return running


@pytest.fixture
def server(_shared_servers: dict[bool, RunningServer]) -> Iterator[RunningServer]:
    """The module's answering server (v1, raw /predict): for a test that does not change it and
    reads back only what it logged itself (its own request ids). Checked unchanged before and after."""
    running = _unchanged(_shared_servers[True])
    yield running
    _unchanged(running)


@pytest.fixture(params=["raw", "fastapi"])
def either_server(
    request: pytest.FixtureRequest, _shared_servers: dict[bool, RunningServer]
) -> Iterator[RunningServer]:
    """`server` with POST /predict on the raw endpoint, then one on the FastAPI route."""
    running = _unchanged(_shared_servers[request.param == "raw"])
    yield running
    _unchanged(running)
