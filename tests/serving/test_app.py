"""The serving app end to end: a real uvicorn server on 127.0.0.1, httpx clients, SQLite store."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
import sqlalchemy as sa

from gitops_ml.prediction_store import PredictionStore
from tests.fixtures.projects import make_config_project
from tests.serving.conftest import FEATURES, records_of, synth_churn


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return records_of(synth_churn(40, seed=7))


def expected_scores(pipeline, settings, rows: list[dict]) -> np.ndarray:
    from gitops_ml.training.pipeline import prepare_features

    X = prepare_features(pd.DataFrame.from_records(rows, columns=FEATURES), settings)
    return pipeline.predict_proba(X)[:, list(pipeline.classes_).index(1)]


def test_health_ready_model_and_docs(server):
    assert server.client.get("/health").json() == {"status": "ok"}
    ready = server.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == "v1"
    assert ready.json()["reload_error"] is None
    model = server.client.get("/model").json()
    assert model["version"] == "v1" and model["sha256"] and model["features"] == FEATURES
    assert model["decision"] == {"kind": "most_probable", "text": "the most probable class"}
    assert server.client.get("/docs").status_code == 200
    spec = server.client.get("/openapi.json").json()
    body_schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "tenure_months" in json.dumps(body_schema)


def test_single_and_batch_predictions_match_the_pipeline(server, records, trained, settings):
    single = server.client.post("/predict", json={**records[0], "request_id": "client-1"})
    assert single.status_code == 200, single.text
    out = single.json()
    assert out["request_id"] == "client-1" and out["model_version"] == "v1"
    assert out["prediction"] in (0, 1)
    assert out["score"] == pytest.approx(out["probabilities"]["1"])
    assert sum(out["probabilities"].values()) == pytest.approx(1.0)

    batch = server.client.post("/predict", json={"records": records})
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert body["model_version"] == "v1" and len(body["predictions"]) == len(records)
    assert len({p["request_id"] for p in body["predictions"]}) == len(records)
    scores = [p["score"] for p in body["predictions"]]
    np.testing.assert_allclose(scores, expected_scores(trained["v1"], settings, records), rtol=1e-9)
    assert scores[0] == pytest.approx(out["score"])


def test_predictions_are_logged_with_inputs_output_and_version(server, records):
    response = server.client.post("/predict", json={**records[1], "request_id": "logged-1"})
    assert response.status_code == 200
    server.flush()
    frame = PredictionStore(f"sqlite:///{server.db_path}").window()
    row = frame.set_index("request_id").loc["logged-1"]
    assert row["model_version"] == "v1"
    assert row["score"] == pytest.approx(response.json()["score"])
    assert row["tenure_months"] == records[1]["tenure_months"] and row["plan"] == records[1]["plan"]
    assert row["latency_ms"] > 0


def _bad(records: list[dict]) -> list[tuple[str, object, int, str]]:
    good = records[0]
    missing = {k: v for k, v in good.items() if k != "tenure_months"}
    return [
        ("missing field", missing, 422, "tenure_months"),
        ("wrong type", {**good, "support_calls": "many"}, 422, "support_calls"),
        ("out of range", {**good, "monthly_charges": 10_000}, 422, "monthly_charges"),
        ("unknown category", {**good, "plan": "gold"}, 422, "plan"),
        ("null in a required field", {**good, "region": None}, 422, "region"),
        ("unknown field", {**good, "favourite_colour": "blue"}, 422, "favourite_colour"),
        ("empty batch", {"records": []}, 422, "records"),
        ("records not a list", {"records": {"a": 1}}, 422, "records"),
        ("bad record in a batch", {"records": [good, {**good, "late_payments": -1}]}, 422, "late_payments"),
        ("too many records", {"records": [good] * 501}, 422, "at most 500"),
        (
            "duplicate request ids",
            {"records": [{**good, "request_id": "a"}, {**good, "request_id": "a"}]},
            422,
            "request_id",
        ),
        ("not a record", "hello", 422, "one record {...}"),
    ]


@pytest.mark.parametrize("case", range(12))
def test_bad_requests_get_4xx_naming_the_field(server, records, case):
    name, payload, status, needle = _bad(records)[case]
    response = server.client.post("/predict", json=payload)
    assert response.status_code == status, (name, response.text)
    body = response.json()
    assert needle in body["message"], (name, body)


def test_bad_record_errors_name_the_record_and_field(server, records):
    payload = {"records": [records[0], {**records[1], "tenure_months": 500}]}
    detail = server.client.post("/predict", json=payload).json()["detail"]
    assert [(d["record"], d["field"], d["type"]) for d in detail] == [(1, "tenure_months", "less_than_equal")]
    assert detail[0]["input"] == 500


def test_malformed_json_and_empty_body_get_400(server):
    malformed = server.client.post(
        "/predict", content=b'{"tenure_months": 3,', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["message"]
    empty = server.client.post("/predict", content=b"")
    assert empty.status_code == 400 and "empty" in empty.json()["message"]


def test_oversized_body_gets_413_by_header_and_while_streaming(start_server, model_store):
    model_store.point_to("v1")
    running = start_server(max_body_bytes=4096)
    declared = running.client.post("/predict", content=b"{" + b" " * 5000 + b"}")
    assert declared.status_code == 413 and "4096" in declared.json()["message"]

    def chunks():  # no Content-Length: the server must count bytes as they arrive
        for _ in range(10):
            yield b" " * 1000

    streamed = running.client.post("/predict", content=chunks())
    assert streamed.status_code == 413 and "4096" in streamed.json()["message"]
    assert running.client.get("/health").status_code == 200


def predictions_logged(server) -> tuple[int, int]:
    """Rows in the server's prediction log, and their distinct request ids, once it has written all."""
    server.flush()
    engine = sa.create_engine(f"sqlite:///{server.db_path}")
    with engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT count(*), count(DISTINCT request_id) FROM predictions").one()
    engine.dispose()
    return tuple(total)


def test_concurrent_clients_log_exactly_one_row_per_prediction(server, records):
    import httpx

    threads, per_thread = 8, 50
    failures: list[str] = []
    before = predictions_logged(server)  # the module's server: what the tests before this one logged

    def client(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(per_thread):
                record = {**records[(worker + i) % len(records)], "request_id": f"conc{worker}-{i}"}
                response = http.post("/predict", json=record)
                if response.status_code != 200 or response.json()["request_id"] != f"conc{worker}-{i}":
                    failures.append(response.text)

    workers = [threading.Thread(target=client, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    after = predictions_logged(server)
    assert (after[0] - before[0], after[1] - before[1]) == (threads * per_thread, threads * per_thread)
    engine = sa.create_engine(f"sqlite:///{server.db_path}")
    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()
    assert mode == "wal"


def test_concurrent_requests_get_their_own_scores(server, records, trained, settings):
    """Requests merged into one pipeline call must each get the score of their own record."""
    import httpx

    expected = expected_scores(trained["v1"], settings, records)
    got: dict[int, float] = {}

    def client(start: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(start, len(records), 4):
                got[i] = http.post("/predict", json=records[i]).json()["score"]

    workers = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    np.testing.assert_allclose([got[i] for i in range(len(records))], expected, rtol=1e-9)


def test_feedback_joins_labels(server, records):
    server.client.post(
        "/predict",
        json={"records": [{**records[0], "request_id": "fb-1"}, {**records[1], "request_id": "fb-2"}]},
    )
    # No explicit flush: /feedback flushes the logger before it calls an id unknown.
    first = server.client.post("/feedback", json={"request_id": "fb-1", "label": 1})
    assert first.status_code == 200, first.text
    assert server.client.post("/feedback", json={"request_id": "fb-2", "label": "0"}).json()["label"] == 0
    unknown = server.client.post("/feedback", json={"request_id": "never-served", "label": 1})
    assert unknown.status_code == 404 and "never-served" in unknown.json()["message"]
    bad = server.client.post("/feedback", json={"request_id": "fb-1", "label": [1]})
    assert bad.status_code == 422 and "label" in bad.json()["message"]
    missing = server.client.post("/feedback", json={"label": 1})
    assert missing.status_code == 422 and "request_id" in missing.json()["message"]

    frame = PredictionStore(f"sqlite:///{server.db_path}").window().set_index("request_id")
    assert frame.loc["fb-1", "label"] == 1 and frame.loc["fb-2", "label"] == 0


def test_no_pointer_means_not_ready_until_one_appears(start_server, model_store, records):
    running = start_server()
    ready = running.client.get("/ready")
    assert ready.status_code == 503 and "not found" in ready.json()["reason"]
    assert running.client.post("/predict", json=records[0]).status_code == 503
    model_store.point_to("v1")
    running.wait_for(lambda r: r.status_code == 200)
    assert running.client.post("/predict", json=records[0]).json()["model_version"] == "v1"


def test_hot_reload_to_a_new_pointer(own_server, model_store, records, trained, settings):
    before = own_server.client.post("/predict", json=records[2]).json()
    assert before["model_version"] == "v1"
    model_store.point_to("v2")
    own_server.wait_for(lambda r: r.json().get("model_version") == "v2")
    after = own_server.client.post("/predict", json=records[2]).json()
    assert after["model_version"] == "v2"
    assert after["score"] == pytest.approx(expected_scores(trained["v2"], settings, [records[2]])[0])
    assert after["score"] != pytest.approx(before["score"])
    assert own_server.client.get("/model").json()["version"] == "v2"


def test_tampered_model_at_reload_keeps_the_old_model_serving(own_server, model_store, records):
    info = model_store.publish("v2")
    path = Path(info["artifact_uri"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte changed
    path.write_bytes(bytes(data))
    model_store.point_to("v2", sha256=info["sha256"])  # the pointer carries the original digest

    ready = own_server.wait_for(lambda r: r.json().get("reload_error") is not None)
    assert ready.status_code == 200
    assert ready.json()["model_version"] == "v1"
    assert "sha256" in ready.json()["reload_error"]
    response = own_server.client.post("/predict", json=records[0])
    assert response.status_code == 200 and response.json()["model_version"] == "v1"

    model_store.point_to("v1")  # a revert of the pointer clears the error
    own_server.wait_for(lambda r: r.json().get("reload_error") is None)


def test_optional_id_and_dates_are_checked_and_logged(server, records):
    extra = {"customer_id": "CUST-0000042", "signup_date": "2025-02-03", "snapshot_date": "2026-03-01"}
    ok = server.client.post("/predict", json={**records[0], **extra, "request_id": "with-id"})
    assert ok.status_code == 200, ok.text
    bad = server.client.post("/predict", json={**records[0], "customer_id": "C42"})
    assert bad.status_code == 422 and "customer_id" in bad.json()["message"]
    server.flush()
    row = PredictionStore(f"sqlite:///{server.db_path}").window().set_index("request_id").loc["with-id"]
    assert row["customer_id"] == "CUST-0000042" and row["snapshot_date"] == "2026-03-01"


def test_a_bare_list_is_a_batch(server, records):
    response = server.client.post("/predict", json=records[:3])
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 3


# Each body is a client's mistake: a 4xx naming record and field where there is one, never a 5xx,
# and nothing logged with a traceback.
HOSTILE = [
    ("NaN", b'{"tenure_months": NaN}', 422, "tenure_months"),
    (
        "Infinity",
        b'{"records": [{}, {"monthly_charges": Infinity}]}',
        422,
        "record 1: field 'monthly_charges'",
    ),
    ("-Infinity", b'{"monthly_charges": -Infinity}', 422, "monthly_charges"),
    ("1e309", b'{"total_charges": 1e309}', 422, "total_charges"),
    ("integer beyond float64", b'{"usage_minutes": 1' + b"0" * 400 + b"}", 422, "usage_minutes"),
    ("100,000 nested brackets", b"[" * 100_000, 400, "nested too deeply"),
    ("invalid UTF-8", b'{"plan": "\xff\xfe"}', 400, "not UTF-8"),
    (
        "duplicate keys",
        b'{"plan": "basic", "plan": "premium"}',
        422,
        "field 'plan': field given more than once",
    ),
    ("a JSON number", b"42", 422, "one record {...}"),
]


@pytest.mark.parametrize(("name", "body", "status", "needle"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_get_a_4xx_and_no_traceback(
    either_server, records, caplog, name, body, status, needle
):
    server = either_server
    if name == "duplicate keys":
        good = {k: v for k, v in records[0].items() if k != "plan"}
        body = body[:-1] + b", " + orjson.dumps(good)[1:]
    with caplog.at_level(logging.INFO):
        response = server.client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, (name, response.text)
    assert needle in response.json()["message"], (name, response.json())
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], name


def test_a_value_the_estimator_cannot_take_is_a_4xx(server, records, monkeypatch):
    model = server.app.state.holder.current

    def refuse(records):
        raise ValueError("Input X contains infinity or a value too large for dtype('float32').")

    monkeypatch.setattr(type(model), "predict", lambda self, rows: refuse(rows))
    response = server.client.post("/predict", json=records[0])
    assert response.status_code == 422 and "cannot score this input" in response.json()["message"]


def test_model_says_which_path_serves(server):
    info = server.client.get("/model").json()
    assert info["fast_path"] is True
    assert info["serving_path"].startswith("compiled numpy preprocessing")


def test_feedback_needs_the_labels_token_when_one_is_configured(
    start_server, model_store, records, monkeypatch
):
    """The attack: anyone who can reach /feedback writes retraining labels. With a token configured
    only its holders can."""
    monkeypatch.setenv("GITOPS_ML_LABELS_TOKEN", "s3cret-labels-token")
    model_store.point_to("v1")
    running = start_server()
    assert running.client.post("/predict", json={**records[0], "request_id": "tok-1"}).status_code == 200
    running.flush()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-labels-token"}):
        refused = running.client.post("/feedback", json={"request_id": "tok-1", "label": 1}, headers=headers)
        assert refused.status_code == 401 and "GITOPS_ML_LABELS_TOKEN" in refused.json()["message"]
    assert PredictionStore(f"sqlite:///{running.db_path}").window()["label"].isna().all()
    accepted = running.client.post(
        "/feedback",
        json={"request_id": "tok-1", "label": 1},
        headers={"Authorization": "Bearer s3cret-labels-token"},
    )
    assert accepted.status_code == 200, accepted.text


def test_labels_import_needs_the_token_when_one_is_configured(server, records, tmp_path, monkeypatch, capsys):
    from gitops_ml.cli import main

    assert server.client.post("/predict", json={**records[0], "request_id": "imp-1"}).status_code == 200
    server.flush()
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\nimp-1,1\n")
    monkeypatch.chdir(make_config_project(tmp_path / "project"))
    command = [
        "labels",
        "import",
        str(labels),
        "--config-dir",
        "config",
        "--store-url",
        f"sqlite:///{server.db_path}",
    ]
    monkeypatch.setenv("GITOPS_ML_LABELS_TOKEN", "s3cret-labels-token")
    for extra in ([], ["--token", "wrong"]):
        assert main([*command, *extra]) == 2
        assert "GITOPS_ML_LABELS_TOKEN" in capsys.readouterr().err
    logged = PredictionStore(f"sqlite:///{server.db_path}").window().set_index("request_id")
    assert pd.isna(logged.loc["imp-1", "label"])  # nothing imported (the server may hold other rows)
    assert main([*command, "--token", "s3cret-labels-token"]) == 0
    assert "1 matched" in capsys.readouterr().out


def test_raw_endpoint_and_fastapi_route_answer_the_same_bytes(start_server, model_store, records):
    # POST /predict is answered in front of FastAPI; the route stays as the reference: the same
    # status, content type and body bytes for good and bad inputs alike
    model_store.point_to("v1")
    raw = start_server(max_body_bytes=20_000)
    routed = start_server(raw_predict=False, max_body_bytes=20_000)
    good = {**records[0], "request_id": "same-1"}
    batch = {"records": [{**r, "request_id": f"b-{i}"} for i, r in enumerate(records[:5])]}
    dup = {k: v for k, v in records[0].items() if k != "plan"}
    bodies = [
        orjson.dumps(good),
        orjson.dumps(batch),
        orjson.dumps(batch["records"]),
        orjson.dumps({**records[0], "plan": "platinum", "request_id": "x"}),
        orjson.dumps({"records": [records[0], {**records[1], "tenure_months": -3}]}),
        orjson.dumps({"records": [], "extra": 1}),
        orjson.dumps({"records": []}),
        orjson.dumps({"records": {"a": 1}}),
        orjson.dumps([{**records[0], "request_id": "d"}, {**records[1], "request_id": "d"}]),
        b"",
        b"   ",
        b"{",
        b'{"plan": "basic", "plan": "premium", ' + orjson.dumps(dup)[1:],
        b"x" * 30_000,  # over the body limit (by Content-Length)
        *(body for _, body, _, _ in HOSTILE),
    ]
    for body in bodies:
        answers = [
            s.client.post("/predict", content=body, headers={"content-type": "application/json"})
            for s in (raw, routed)
        ]
        first, second = answers
        assert first.status_code == second.status_code, (body[:60], first.text, second.text)
        assert first.status_code < 500, (body[:60], first.text)
        assert first.headers["content-type"] == second.headers["content-type"] == "application/json"
        assert first.content == second.content, (body[:60], first.text, second.text)

    def chunks():  # no Content-Length: the limit is counted while streaming
        for _ in range(30):
            yield b"x" * 1000

    streamed = [s.client.post("/predict", content=chunks()) for s in (raw, routed)]
    assert streamed[0].status_code == streamed[1].status_code == 413
    assert streamed[0].content == streamed[1].content
    # everything else is FastAPI's on both
    assert raw.client.get("/predict").status_code == routed.client.get("/predict").status_code == 405
    assert raw.client.get("/openapi.json").json() == routed.client.get("/openapi.json").json()
    raw.flush()
    routed.flush()
    served = [s.client.get("/ready").json()["prediction_log"] for s in (raw, routed)]
    assert (
        served[0]["served"]
        == served[1]["served"]
        == served[0]["written"]
        == served[1]["written"]
        == 1 + 5 + 5
    )
