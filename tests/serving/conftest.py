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


@pytest.fixture
def start_server(tmp_path: Path, model_store: ModelStoreFixture) -> Iterator[Callable[..., RunningServer]]:
    """Factory: start uvicorn in a thread with `create_app(...)`; every server is stopped at teardown."""
    from gitops_ml.serving.app import create_app

    started: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(settings: Settings | None = None, *, raw_predict: bool = True, **serving: Any) -> RunningServer:
        app_settings = settings or make_settings(**serving)
        db_path = tmp_path / f"predictions-{len(started)}.db"
        app = create_app(
            app_settings,
            pointer_path=model_store.pointer_path,
            store_url=f"sqlite:///{db_path}",
            cache_dir=tmp_path / "cache",
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
        started.append((server, thread, client))
        return RunningServer(f"http://127.0.0.1:{port}", app, client, db_path)

    yield start
    for server, thread, client in started:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def server(model_store: ModelStoreFixture, start_server: Callable[..., RunningServer]) -> RunningServer:
    """A server whose pointer names v1."""
    model_store.point_to("v1")
    return start_server()


@pytest.fixture(params=["raw", "fastapi"])
def either_server(
    request: pytest.FixtureRequest, model_store: ModelStoreFixture, start_server: Callable[..., RunningServer]
) -> RunningServer:
    """A server whose pointer names v1, with POST /predict on the raw endpoint, then on the FastAPI route."""
    model_store.point_to("v1")
    return start_server(raw_predict=request.param == "raw")
