"""`gitops-ml validate` end to end: exit 0 on good data; each kind of bad input exits 2 with a
message naming the file/column and the rule, and leaves the data untouched."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from gitops_ml.cli import main


def _batch(root: Path) -> Path:
    return max((root / "data/batches").glob("*.csv"))


def _rehash(root: Path) -> None:
    """Keep the manifest honest about the edited bytes, so the contract (not sha256) catches them."""
    manifest_path = root / "data/manifest.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    for entry in manifest["batches"]:
        path = root / "data" / entry["uri"]
        if path.exists():
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))


def _edit_frame(
    edit: Callable[[pd.DataFrame], pd.DataFrame], every_batch: bool = False
) -> Callable[[Path], None]:
    """every_batch: a schema change in one batch only is caught earlier, by acquisition."""

    def apply(root: Path) -> None:
        paths = sorted((root / "data/batches").glob("*.csv")) if every_batch else [_batch(root)]
        for path in paths:
            edit(pd.read_csv(path)).to_csv(path, index=False)
        _rehash(root)

    return apply


def _set(column: str, value, row: int = 2):
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return edit


def _copy_id(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[5, "customer_id"] = frame.loc[4, "customer_id"]
    return frame


def _bytes(transform: Callable[[bytes], bytes], rehash: bool = True) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = _batch(root)
        path.write_bytes(transform(path.read_bytes()))
        if rehash:
            _rehash(root)

    return apply


def _manifest(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / "data/manifest.yaml"
        manifest = yaml.safe_load(path.read_text())
        edit(manifest)
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))

    return apply


def _to_parquet_then(transform: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        csv = _batch(root)
        parquet = csv.with_suffix(".parquet")
        pd.read_csv(csv).to_parquet(parquet)
        parquet.write_bytes(transform(parquet.read_bytes()))
        csv.unlink()
        manifest_path = root / "data/manifest.yaml"
        manifest = yaml.safe_load(manifest_path.read_text())
        for entry in manifest["batches"]:
            if entry["uri"].endswith(csv.name):
                entry["uri"] = entry["uri"].replace(".csv", ".parquet")
                entry["format"] = "parquet"
        manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        _rehash(root)

    return apply


def _sql_unreachable(manifest: dict) -> None:
    entry = manifest["batches"][-1]
    for key in ("uri", "sha256"):
        entry.pop(key, None)
    entry["format"] = "sql"
    entry["sql"] = {"url": "postgresql+psycopg://user:s3cret@127.0.0.1:9/none", "table": "churn"}


def _write(relative: str, text: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / relative).write_text(text)

    return apply


CASES = {
    # name: (mutation, words that must appear in the error output)
    "missing column": (
        _edit_frame(lambda f: f.drop(columns=["region"]), every_batch=True),
        ["region", "missing_column"],
    ),
    "extra column": (
        _edit_frame(lambda f: f.assign(shoe_size=42), every_batch=True),
        ["shoe_size", "unexpected_column"],
    ),
    "column missing in one batch": (
        _edit_frame(lambda f: f.drop(columns=["region"])),
        ["region", "different columns"],
    ),
    "wrong dtype": (_edit_frame(_set("tenure_months", "abc")), ["tenure_months", "type", "abc"]),
    "null in required": (_edit_frame(_set("plan", None)), ["plan", "required"]),
    "out of range": (_edit_frame(_set("support_calls", 999)), ["support_calls", "maximum", "999"]),
    "not in valid set": (_edit_frame(_set("region", "mars")), ["region", "valid_values", "mars"]),
    "duplicate key": (_edit_frame(_copy_id), ["customer_id", "unique"]),
    "empty file": (_bytes(lambda b: b""), ["empty"]),
    "header only": (_bytes(lambda b: b.split(b"\n", 1)[0] + b"\n"), ["header-only", "0 rows"]),
    "truncated csv": (_bytes(lambda b: b[: len(b) - 40]), ["truncated"]),
    "corrupt parquet": (_to_parquet_then(lambda b: b[:100] + b"\x00garbage" + b[200:]), ["parquet"]),
    "non-utf8": (_bytes(lambda b: b.replace(b"north", b"n\xf6rth", 1)), ["UTF-8"]),
    "sha256 mismatch": (_bytes(lambda b: b.replace(b"basic", b"BASIC", 1), rehash=False), ["sha256"]),
    "missing file": (
        _manifest(lambda m: m["batches"][-1].update(uri="batches/nope.csv")),
        ["nope.csv", "not found"],
    ),
    "unreachable sql": (_manifest(_sql_unreachable), ["sql"]),
    "malformed contract yaml": (
        _write("data_contracts/churn.odcs.yaml", "schema: [\n  - name: x\n  bad"),
        ["churn.odcs.yaml", "YAML"],
    ),
    "contract not odcs": (
        _write("data_contracts/churn.odcs.yaml", "apiVersion: v9\nkind: Recipe\n"),
        ["churn.odcs.yaml", "apiVersion"],
    ),
    "config unknown key": (
        _write("config/split.yaml", "strategy: time\nholdout_period: 1\n"),
        ["config/split.yaml", "split.holdout_period", "Extra inputs"],
    ),
}


def test_bundled_style_data_passes(mini_repo: Path, capsys):
    assert main(["validate", "--no-deepchecks"]) == 0
    assert json.loads((mini_repo / "reports/validation/summary.json").read_text())["status"] == "passed"
    assert "contract: passed" in capsys.readouterr().out


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_and_names_what_broke(mini_repo: Path, capsys, case: str):
    mutate, words = CASES[case]
    mutate(mini_repo)
    before = {p: p.read_bytes() for p in (mini_repo / "data").rglob("*") if p.is_file()}
    code = main(["validate", "--no-deepchecks"])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 2, output[-3000:]
    for word in words:
        assert word.lower() in output.lower(), f"{word!r} not in output:\n{output[-3000:]}"
    assert "s3cret" not in output  # never print a password from a URL
    after = {p: p.read_bytes() for p in (mini_repo / "data").rglob("*") if p.is_file()}
    assert after == before, "validate must not touch the data"
    summary = json.loads((mini_repo / "reports/validation/summary.json").read_text())
    assert summary["status"] in {"error", "failed"}
