"""`gitops-ml contract check|diff` through the real entry point (exit codes are the CI contract)."""

from __future__ import annotations

import json

import yaml

from gitops_ml.cli import main
from tests.contracts.conftest import make_valid_frame, prop


def test_check_valid_csv_exits_0(tmp_path, contract_path, capsys):
    data = tmp_path / "batch.csv"
    make_valid_frame().to_csv(data, index=False)
    assert main(["contract", "check", str(data), "--contract", str(contract_path)]) == 0
    assert "all passed" in capsys.readouterr().out


def test_check_valid_parquet_exits_0(tmp_path, contract_path):
    data = tmp_path / "batch.parquet"
    make_valid_frame().to_parquet(data, index=False)
    assert main(["contract", "check", str(data), "--contract", str(contract_path)]) == 0


def test_check_bad_csv_exits_2_with_the_failures_table(tmp_path, contract_path, capsys):
    df = make_valid_frame()
    df.loc[3, "region"] = "middle"
    df.loc[5, "tenure_months"] = -4
    data = tmp_path / "batch.csv"
    df.to_csv(data, index=False)
    assert main(["contract", "check", str(data), "--contract", str(contract_path)]) == 2
    captured = capsys.readouterr()
    assert "region" in captured.out and "valid_values" in captured.out and "'middle'" in captured.out
    assert "tenure_months" in captured.out and "minimum" in captured.out
    assert "error:" in captured.err and "batch.csv" in captured.err


def test_check_json_format(tmp_path, contract_path, capsys):
    df = make_valid_frame()
    df.loc[0, "customer_id"] = "nope"
    data = tmp_path / "batch.csv"
    df.to_csv(data, index=False)
    assert main(["contract", "check", str(data), "--contract", str(contract_path), "--format", "json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    assert any(
        r["column"] == "customer_id" and r["rule"] == "pattern" for r in report["rules"] if not r["passed"]
    )


def test_check_missing_file_exits_2(tmp_path, contract_path, capsys):
    assert main(["contract", "check", str(tmp_path / "nope.csv"), "--contract", str(contract_path)]) == 2
    assert "nope.csv" in capsys.readouterr().err


def _narrowed(tmp_path, contract_path):
    data = yaml.safe_load(contract_path.read_text())
    prop(data, "tenure_months")["logicalTypeOptions"]["maximum"] = 60
    path = tmp_path / "new.odcs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_diff_exit_codes(tmp_path, contract_path, capsys):
    new = _narrowed(tmp_path, contract_path)
    assert main(["contract", "diff", str(contract_path), str(new)]) == 0
    assert "[breaking] tenure_months" in capsys.readouterr().out
    assert main(["contract", "diff", str(contract_path), str(new), "--fail-on-breaking"]) == 1
    assert main(["contract", "diff", str(new), str(contract_path), "--fail-on-breaking"]) == 0


def test_diff_markdown_and_json(tmp_path, contract_path, capsys):
    new = _narrowed(tmp_path, contract_path)
    assert main(["contract", "diff", str(contract_path), str(new), "--format", "markdown"]) == 0
    assert "| ❌ breaking | `tenure_months` |" in capsys.readouterr().out
    assert main(["contract", "diff", str(contract_path), str(new), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["breaking"] == 1


def test_diff_of_an_invalid_contract_exits_2(tmp_path, contract_path, capsys):
    bad = tmp_path / "bad.odcs.yaml"
    bad.write_text("apiVersion: v3.1.0\nkind: Nope\n")
    assert main(["contract", "diff", str(contract_path), str(bad)]) == 2
    assert "bad.odcs.yaml" in capsys.readouterr().err
