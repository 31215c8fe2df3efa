from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gitops_ml.cli import main
from gitops_ml.data.acquire import acquire
from gitops_ml.data.generator import COVARIATE_DRIFT, generate_batches
from gitops_ml.data.manifest import load_manifest

from .helpers import csv_bytes

SMALL = ["--months", "2", "--rows", "60", "--start", "2026-03", "--seed", "5"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_generate_writes_batches_and_manifest_reproducibly(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["data", "generate", "--out", str(tmp_path / "a"), *SMALL]) == 0
    assert "wrote 2 batches (120 rows)" in capsys.readouterr().out
    assert main(["data", "generate", "--out", str(tmp_path / "b"), *SMALL]) == 0
    first = _tree(tmp_path / "a")
    assert sorted(first) == ["batches/churn-2026-03.csv", "batches/churn-2026-04.csv", "manifest.yaml"]
    assert first == _tree(tmp_path / "b")  # byte-identical

    manifest = load_manifest(tmp_path / "a/manifest.yaml")
    assert "--seed 5 --scenario stable" in (manifest.description or "")
    data = acquire(tmp_path / "a/manifest.yaml", time_column="snapshot_date")
    pd.testing.assert_frame_equal(
        data.frame, pd.concat(generate_batches("2026-03", 2, 60, 5), ignore_index=True)
    )


def test_generate_with_a_drift_scenario_and_onset(tmp_path: Path) -> None:
    args = [
        "data",
        "generate",
        "--out",
        str(tmp_path),
        *SMALL,
        "--scenario",
        "covariate-drift",
        "--onset",
        "2026-04",
    ]
    assert main(args) == 0
    expected = generate_batches("2026-03", 2, 60, 5, COVARIATE_DRIFT.with_onset("2026-04"))
    frame = acquire(tmp_path / "manifest.yaml").frame
    pd.testing.assert_frame_equal(frame, pd.concat(expected, ignore_index=True))
    assert "--onset 2026-04" in (load_manifest(tmp_path / "manifest.yaml").description or "")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--scenario", "chaos", "unknown scenario 'chaos'"),
        ("--start", "2026-13", "month must be 'YYYY-MM'"),
        ("--onset", "someday", "onset_month must be"),
    ],
)
def test_generate_rejects_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture, option: str, value: str, message: str
) -> None:
    assert main(["data", "generate", "--out", str(tmp_path), option, value]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_manifest_add_and_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/ here: verify allows repository files only
    assert main(["data", "generate", "--out", str(tmp_path), *SMALL]) == 0
    new = tmp_path / "batches" / "churn-2026-05.csv"
    new.write_bytes(csv_bytes(generate_batches("2026-05", 1, 30, 5, id_offset=120)[0]))
    manifest = tmp_path / "manifest.yaml"
    capsys.readouterr()
    assert (
        main(
            ["data", "manifest-add", str(new), "--manifest", str(manifest), "--time-column", "snapshot_date"]
        )
        == 0
    )
    assert "added 'churn-2026-05' (30 rows, 2026-05-01..2026-05-01" in capsys.readouterr().out
    assert load_manifest(manifest).batches[-1].uri == "batches/churn-2026-05.csv"

    assert main(["data", "verify", "--manifest", str(manifest), "--time-column", "snapshot_date"]) == 0
    out = capsys.readouterr().out
    assert "ok  churn-2026-05  30 rows" in out and "150 rows, 14 columns; manifest hash" in out

    new.write_bytes(new.read_bytes().replace(b"basic", b"BASIC", 1))
    assert main(["data", "verify", "--manifest", str(manifest), "--time-column", "snapshot_date"]) == 2
    assert "batch 'churn-2026-05'" in (err := capsys.readouterr().err) and "sha256 mismatch" in err


def test_manifest_add_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    manifest = tmp_path / "manifest.yaml"
    assert (
        main(
            [
                "data",
                "manifest-add",
                str(tmp_path / "nope.csv"),
                "--manifest",
                str(manifest),
                "--time-column",
                "",
            ]
        )
        == 2
    )
    assert "nope.csv): file not found" in capsys.readouterr().err
    assert not manifest.exists()


def test_manifest_add_and_verify_take_their_defaults_from_config(tmp_path: Path, monkeypatch, capsys) -> None:
    """The configured manifest and time column (here an integer day index), not the example's."""
    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame(
        {"day": [1, 1, 2, 2, 3, 3, 4, 4] * 5, "x": range(40), "y": [0.5 * i for i in range(40)]}
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main(["init", "t.csv", "--target", "y", "--task", "regression", "--time-column", "day"]) == 0
    frame.assign(day=9).to_csv(tmp_path / "later.csv", index=False)
    capsys.readouterr()
    assert main(["data", "manifest-add", "later.csv"]) == 0
    assert "added 'later' (40 rows, 9..9" in capsys.readouterr().out
    assert load_manifest(tmp_path / "data" / "manifest.yaml").batches[-1].time_range.start == 9
    assert main(["data", "verify"]) == 0
    assert "80 rows" in capsys.readouterr().out


def test_verify_reads_urls_under_the_configured_prefixes(tmp_path: Path, monkeypatch, capsys) -> None:
    """`data verify` checks a URL batch as acquire does: allowed by dataset.allowed_uri_prefixes only."""
    import yaml

    from gitops_ml.data.add_batch import add_batch
    from tests.fixtures.projects import make_churn_project

    project = make_churn_project(tmp_path / "p", months=1, rows=30)
    monkeypatch.chdir(project)
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    outside = bucket / "churn-2026-05.csv"
    outside.write_bytes(csv_bytes(generate_batches("2026-05", 1, 30, 5, id_offset=120)[0]))
    add_batch(Path("data/manifest.yaml"), outside.as_uri(), time_column="snapshot_date")
    capsys.readouterr()
    assert main(["data", "verify"]) == 2
    assert "outside dataset.allowed_uri_prefixes" in capsys.readouterr().err
    dataset = yaml.safe_load(Path("config/dataset.yaml").read_text())
    dataset["allowed_uri_prefixes"] = [bucket.as_uri() + "/"]
    Path("config/dataset.yaml").write_text(yaml.safe_dump(dataset))
    assert main(["data", "verify"]) == 0
    assert "churn-2026-05  30 rows" in (out := capsys.readouterr().out) and "60 rows" in out
