def test_up(server):
    r = server.client.get("/ready"); print(r.json())
    assert r.status_code == 200
    from tests.serving.conftest import synth_churn, records_of
    recs = records_of(synth_churn(5, 9))
    r = server.client.post("/predict", json=recs[0]); print(r.status_code, r.text)
    r = server.client.post("/predict", json={"records": recs}); print(r.status_code, r.text)
    r = server.client.post("/predict", json={"records": [{**recs[0], "plan": "gold", "tenure_months": 500}, {}]}); print(r.status_code, r.text)
    r = server.client.post("/predict", content=b"{bad"); print(r.status_code, r.text)
    r = server.client.post("/predict", content=b"x" * 2_000_000); print(r.status_code, r.text)
    def gen():
        for _ in range(30): yield b" " * 100_000
    r = server.client.post("/predict", content=gen()); print(r.status_code, r.text)
    r = server.client.post("/feedback", json={"request_id": "nope", "label": 1}); print(r.status_code, r.text)
    r = server.client.post("/feedback", json={"request_id": 3, "label": [1]}); print(r.status_code, r.text)
    r = server.client.get("/model"); print(r.status_code, r.text)
    assert False
