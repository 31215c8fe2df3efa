"""validate_frame / ensure_valid / invalid_row_mask / coerce_frame on small frames.

Each bad-input test breaks one thing in an otherwise valid frame and checks that the failure names
the rule, the column and an offending value (with its row position).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gitops_ml.contracts.validate import coerce_frame, ensure_valid, invalid_row_mask, validate_frame
from gitops_ml.errors import ValidationFailed
from tests.contracts.conftest import make_valid_frame


def failures(df, contract):
    report = validate_frame(df, contract, source="batch.csv")
    return report, {(r.column, r.rule): r for r in report.failures()}


def assert_fails(df, contract, column, rule, value, row=None):
    report, failed = failures(df, contract)
    assert not report.passed
    assert (column, rule) in failed, f"expected {column}/{rule} in {sorted(failed)}"
    result = failed[(column, rule)]
    assert result.failing_count >= 1
    assert value in [v for _, v in result.examples], result.examples
    if row is not None:
        assert (row, value) in result.examples
    assert repr(value) in result.message
    assert column in report.summary_table() and rule in report.summary_table()
    return report, failed


def test_valid_frame_passes(valid_frame, contract):
    report = validate_frame(valid_frame, contract, source="batch.csv")
    assert report.passed, report.summary_table()
    assert report.failures() == []
    assert report.rows == len(valid_frame)
    assert len(report.rules) > 30 and all(r.passed for r in report.rules)
    assert "all passed" in report.summary_table()
    assert ensure_valid(report) is report
    assert not invalid_row_mask(valid_frame, contract).any()


def test_typed_frame_passes(valid_frame, contract):
    """Dates as datetime64 and categories as category dtype (what Parquet gives) are valid too."""
    df = valid_frame.copy()
    for c in ("signup_date", "snapshot_date"):
        df[c] = pd.to_datetime(df[c])
    for c in ("plan", "region"):
        df[c] = df[c].astype("category")
    df["tenure_months"] = df["tenure_months"].astype("Int64")
    report = validate_frame(df, contract)
    assert report.passed, report.summary_table()


def test_missing_column(valid_frame, contract):
    report, failed = failures(valid_frame.drop(columns=["region"]), contract)
    assert not report.passed
    assert failed[("region", "missing_column")].failing_count == len(valid_frame)
    assert "region" in failed[("region", "missing_column")].message


def test_unexpected_extra_column(valid_frame, contract):
    df = valid_frame.assign(favourite_colour="teal")
    assert_fails(df, contract, "favourite_colour", "unexpected_column", "teal", row=0)


def test_extra_column_allowed_by_policy(valid_frame, edited):
    def allow(d):
        d["schema"][0]["customProperties"][0]["value"] = "allow"

    report = validate_frame(valid_frame.assign(favourite_colour="teal"), edited(allow))
    assert report.passed, report.summary_table()


def test_wrong_type_is_reported_and_range_runs_on_parseable_values(valid_frame, contract):
    df = valid_frame.astype({"monthly_charges": object})
    df.loc[3, "monthly_charges"] = "abc"
    df.loc[5, "monthly_charges"] = 999.0
    _report, failed = assert_fails(df, contract, "monthly_charges", "type", "abc", row=3)
    assert failed[("monthly_charges", "type")].failing_count == 1
    assert failed[("monthly_charges", "maximum")].examples == [(5, 999.0)]
    assert ("monthly_charges", "required") not in failed  # an unparseable value is not a null


def test_fractional_value_in_integer_column(valid_frame, contract):
    df = valid_frame.astype({"support_calls": float})
    df.loc[2, "support_calls"] = 2.5
    assert_fails(df, contract, "support_calls", "type", 2.5, row=2)


def test_number_in_string_column(valid_frame, contract):
    df = valid_frame.astype({"plan": object})
    df.loc[1, "plan"] = 7
    assert_fails(df, contract, "plan", "type", 7, row=1)


def test_unparseable_date(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[4, "signup_date"] = "31/12/2025"
    assert_fails(df, contract, "signup_date", "type", "31/12/2025", row=4)


def test_nulls_in_required_column(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[6, "plan"] = None
    report, failed = failures(df, contract)
    assert not report.passed
    result = failed[("plan", "required")]
    assert result.failing_count == 1 and result.examples == [(6, None)]
    assert "required" in report.summary_table()


def test_nulls_in_nullable_column_pass(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[0, "usage_minutes"] = np.nan
    assert validate_frame(df, contract).passed


def test_value_out_of_range(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[7, "tenure_months"] = 121
    df.loc[8, "late_payments"] = -1
    assert_fails(df, contract, "tenure_months", "maximum", 121, row=7)
    assert_fails(df, contract, "late_payments", "minimum", -1, row=8)


def test_value_not_in_valid_set(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[9, "contract_type"] = "three-year"
    df.loc[10, "churned"] = 2
    assert_fails(df, contract, "contract_type", "valid_values", "three-year", row=9)
    assert_fails(df, contract, "churned", "valid_values", 2, row=10)


def test_duplicate_primary_key(valid_frame, contract):
    df = valid_frame.copy()
    dup = df.loc[0, "customer_id"]
    df.loc[11, "customer_id"] = dup
    _report, failed = assert_fails(df, contract, "customer_id", "unique", dup, row=11)
    assert failed[("customer_id", "unique")].failing_count == 1
    # both copies are bad rows: we cannot tell which one is right
    assert invalid_row_mask(df, contract)[invalid_row_mask(df, contract)].index.tolist() == [0, 11]


def test_pattern_mismatch(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[12, "customer_id"] = "CUST-12"
    assert_fails(df, contract, "customer_id", "pattern", "CUST-12", row=12)


def test_snapshot_not_on_first_of_month(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[13, "snapshot_date"] = "2026-01-15"
    assert_fails(df, contract, "snapshot_date", "pattern", "2026-01-15", row=13)
    typed = df.assign(snapshot_date=pd.to_datetime(df["snapshot_date"]))
    _report, failed = failures(typed, contract)
    assert failed[("snapshot_date", "pattern")].examples[0][0] == 13


def test_duplicate_snapshot_rows_at_table_level(valid_frame, contract):
    df = pd.concat([valid_frame, valid_frame.iloc[[3]]], ignore_index=True)
    _report, failed = failures(df, contract)
    key = ("customer_id,snapshot_date", "duplicate_values")
    assert key in failed
    assert failed[key].examples[0][0] == len(valid_frame)


def test_empty_frame_breaks_row_count(valid_frame, contract):
    report, failed = failures(valid_frame.iloc[:0], contract)
    assert not report.passed
    assert (None, "row_count") in failed


def test_warning_rule_reports_without_failing(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[: len(df) // 2, "payment_method"] = None
    report, failed = failures(df, contract)
    assert report.passed
    warning = failed[("payment_method", "null_values")]
    assert warning.severity == "warning" and "%" in warning.message


def test_ensure_valid_raises_with_the_report(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[2, "region"] = "middle"
    report = validate_frame(df, contract, source="batch.csv")
    with pytest.raises(ValidationFailed) as err:
        ensure_valid(report)
    assert err.value.result is report
    assert err.value.exit_code == 2
    assert "batch.csv" in str(err.value) and "region" in str(err.value) and "'middle'" in str(err.value)


def test_report_serialises(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[1, "signup_date"] = "never"
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"])
    df.loc[2, "snapshot_date"] = pd.Timestamp("2026-03-05")
    data = json.loads(json.dumps(validate_frame(df, contract).to_dict()))
    assert data["passed"] is False and data["rows"] == len(df)
    failed = {(r["column"], r["rule"]): r for r in data["rules"] if not r["passed"]}
    assert failed[("snapshot_date", "pattern")]["examples"] == [{"row": 2, "value": "2026-03-05T00:00:00"}]
    assert failed[("signup_date", "type")]["examples"] == [{"row": 1, "value": "never"}]
    assert "| `signup_date` | type |" in validate_frame(df, contract).to_markdown()


def test_invalid_row_mask_marks_exactly_the_bad_rows(valid_frame, contract):
    df = valid_frame.copy()
    df.loc[1, "tenure_months"] = 500
    df.loc[4, "region"] = "middle"
    df.loc[6, "customer_id"] = None
    df.loc[8, "usage_minutes"] = np.nan  # nullable: fine
    df = df.astype({"monthly_charges": object})
    df.loc[9, "monthly_charges"] = "n/a?"
    mask = invalid_row_mask(df, contract)
    assert mask.index.equals(df.index)
    assert mask[mask].index.tolist() == [1, 4, 6, 9]


def test_coerce_frame_types(valid_frame, contract):
    df = valid_frame.astype({"monthly_charges": object})
    df.loc[0, "monthly_charges"] = "12.5"
    out = coerce_frame(df, contract)
    assert out.columns.tolist() == df.columns.tolist()
    assert out["monthly_charges"].dtype == "float64" and out.loc[0, "monthly_charges"] == 12.5
    assert out["tenure_months"].dtype == "int64"
    assert out["churned"].dtype == "int64"
    assert str(out["snapshot_date"].dtype).startswith("datetime64")
    assert out["plan"].dtype == object and out.loc[0, "plan"] == "basic"
    assert np.isnan(out.loc[0, "total_charges"])  # tenure 0 -> null total, kept as NaN


def test_coerce_frame_nulls_unparseable_values(valid_frame, contract):
    df = valid_frame.astype({"support_calls": object})
    df.loc[3, "support_calls"] = "many"
    out = coerce_frame(df, contract)
    assert str(out["support_calls"].dtype) == "Int64"
    assert out["support_calls"].isna().tolist() == [i == 3 for i in range(len(df))]


def test_bad_rows_never_crash(contract):
    """Every column full of junk of every kind: the validator reports, it does not raise."""
    junk = [None, "", "x", 1, 2.5, -1e308, float("inf"), True, pd.Timestamp("2026-01-01"), ["list"], {"d": 1}]
    df = pd.DataFrame({c: pd.Series(junk, dtype=object) for c in contract.column_names})
    report = validate_frame(df, contract)
    assert not report.passed
    assert invalid_row_mask(df, contract).all()
    coerce_frame(df, contract)


def test_larger_frame_with_mixed_problems(contract):
    df = make_valid_frame(2_000)
    df.loc[1_500, "plan"] = "gold"
    _report, failed = failures(df, contract)
    assert list(failed) == [("plan", "valid_values")]
    assert failed[("plan", "valid_values")].examples == [(1_500, "gold")]


def test_duplicate_column_label(valid_frame, contract):
    df = pd.concat([valid_frame, valid_frame[["plan"]]], axis=1)
    report, failed = failures(df, contract)
    assert not report.passed
    assert ("plan", "duplicate_column") in failed
    assert list(failed) == [("plan", "duplicate_column")]
    assert coerce_frame(df, contract).columns.tolist() == valid_frame.columns.tolist()


def test_zero_tolerance_quality_rules_mark_rows(valid_frame, edited):
    """nullValues mustBe 0 is row-level (every null row is bad); a percent threshold is not."""
    from tests.contracts.conftest import prop

    def strict_nulls(d):
        prop(d, "usage_minutes")["quality"] = [{"metric": "nullValues", "mustBe": 0}]

    df = valid_frame.copy()
    df.loc[[2, 5], "usage_minutes"] = np.nan
    strict = edited(strict_nulls)
    _report, failed = failures(df, strict)
    assert failed[("usage_minutes", "null_values")].failing_count == 2
    mask = invalid_row_mask(df, strict)
    assert mask[mask].index.tolist() == [2, 5]
    tolerant = edited(lambda d: None)  # the committed rule: < 10% nulls, a warning
    assert not invalid_row_mask(df, tolerant).any()


def test_failures_name_the_batch_file_and_its_line(contract):
    first, second = make_valid_frame(8), make_valid_frame(6)
    second["customer_id"] = [f"CUST-{9000000 + i}" for i in range(6)]
    second.loc[3, "plan"] = "platinum"
    frame = pd.concat([first, second], ignore_index=True)
    origins = (("data/batches/b1.csv", 8), ("data/batches/b2.parquet", 6))
    report = validate_frame(frame, contract, source="data/manifest.yaml", origins=origins)
    assert not report.passed
    table = report.summary_table()
    assert "plan    valid_values" in table, table
    assert "data/batches/b2.parquet row 4: 'platinum'" in table, table
    assert report.locate(2) == "data/batches/b1.csv line 4"  # header is line 1
    rule = next(r for r in report.to_dict()["rules"] if r["column"] == "plan" and not r["passed"])
    assert rule["examples"] == [{"row": 11, "value": "platinum", "where": "data/batches/b2.parquet row 4"}]
    with pytest.raises(ValidationFailed, match=r"plan .*platinum.*first at data/batches/b2.parquet row 4"):
        ensure_valid(report)
