"""The monitor flow with a malformed deploy/challenger.yaml: production is still monitored, the
report and summary say the challenger was refused and why, and the exit status is production's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gitops_ml.cli import main
from tests.fixtures.git import GIT_IDENTITY
from tests.flows.conftest import make_mini_repo


def test_a_malformed_challenger_is_refused_in_the_report_and_production_is_still_monitored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], prefect_harness
) -> None:
    from gitops_ml.config import load_settings
    from gitops_ml.data.generator import generate_records
    from gitops_ml.jobs.challenger_scenario import log_scenario_window
    from gitops_ml.prediction_store import PredictionStore
    from gitops_ml.registry.production import load_production

    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(make_mini_repo(tmp_path / "repo", months=2, rows=400))
    assert main(["promote", "--no-deepchecks"]) == 0
    settings = load_settings(Path("config"))
    production = load_production(settings.registry, tmp_path / "cache")
    assert production is not None
    # a canary fraction outside (0, 1): the file names the key and the rule
    pointer = yaml.safe_load(Path("deploy/production.yaml").read_text())
    challenger = {**pointer, "version": "v-challenger", "mode": "canary", "fraction": 5}
    Path("deploy/challenger.yaml").write_text(yaml.safe_dump(challenger))

    now = datetime.now(UTC).replace(microsecond=0)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = PredictionStore(store_url)
    log_scenario_window(
        store,
        settings,
        "challenger-equal",
        index=0,
        start=now - timedelta(days=1),
        end=now,
        versions=(production.version, "v-challenger"),
        classes=list(production.pipeline.classes_),
        rows=300,
        inputs=generate_records(300, seed=3, start_time=now - timedelta(days=1), end_time=now)[
            settings.features.all
        ],
    )
    store.dispose()
    capsys.readouterr()
    code = main(
        ["monitor", "--store-url", store_url, "--window", "1D", "--now", now.isoformat(), "--no-open-pr"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err  # production was monitored: a broken challenger file is reported, not fatal
    summary = json.loads(Path("reports/monitor/summary.json").read_text())
    assert summary["window"]["rows"] == 300 and summary["window"]["performance"]["labelled"] == 300
    assert summary["model_version"] == production.version and summary["challenger"] is None
    refused = summary["challenger_refused"]
    assert "deploy/challenger.yaml" in refused and "fraction" in refused
    report = Path("reports/monitor/report.md").read_text()
    assert "## Challenger" in report and "🛑 **refused**" in report and refused in report
    assert "production was monitored as usual" in report
    assert f"challenger refused (not judged): {refused}" in err
    assert "decision:" in out
    # the PR check refuses it (config check); removing it needs no valid file
    assert main(["config", "check"]) == 2 and "fraction" in capsys.readouterr().err
    assert main(["challenger", "retire"]) == 0
    assert not Path("deploy/challenger.yaml").exists()
