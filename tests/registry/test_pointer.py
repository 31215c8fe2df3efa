"""registry/pointer.py on its own: the production pointer and its append-only history."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_ml.registry.pointer import (
    HistoryEntry,
    PointerError,
    ProductionPointer,
    append_history,
    read_history,
    read_pointer,
    write_pointer,
)


def _pointer(version: str = "v-1", sha: str = "a" * 64) -> ProductionPointer:
    return ProductionPointer(
        version=version, artifact_uri=f"store/{version}/model.skops", sha256=sha, metrics={"roc_auc": 0.81}
    )


def test_no_pointer_file_means_no_production_model_yet(tmp_path: Path):
    assert read_pointer(tmp_path / "production.yaml") is None
    (tmp_path / "empty.yaml").write_text("# nothing promoted yet\n")
    assert read_pointer(tmp_path / "empty.yaml") is None


def test_pointer_round_trips_and_is_plain_yaml(tmp_path: Path):
    path = tmp_path / "deploy" / "production.yaml"
    path.parent.mkdir()
    pointer = _pointer()
    write_pointer(path, pointer)
    assert read_pointer(path) == pointer
    text = path.read_text()
    assert text.startswith("# Production model pointer")
    assert yaml.safe_load(text)["version"] == "v-1"
    assert pointer.promoted_at.endswith("+00:00")  # stamped in UTC when made


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: [unclosed\n", "not valid YAML"),
        ("version: v-1\nartifact_uri: x\n", "sha256"),
        ("version: v-1\nartifact_uri: x\nsha256: abc\nsurprise: 1\n", "surprise"),
        ("version: v-1\nartifact_uri: x\nsha256: abc\nmetrics: {roc_auc: high}\n", "metrics.roc_auc"),
    ],
)
def test_a_broken_pointer_names_the_file_and_the_key(tmp_path: Path, text: str, message: str):
    path = tmp_path / "production.yaml"
    path.write_text(text)
    with pytest.raises(PointerError, match=message) as caught:
        read_pointer(path)
    assert str(path) in str(caught.value)


def test_a_pointer_that_is_not_utf8_is_refused(tmp_path: Path):
    path = tmp_path / "production.yaml"
    path.write_bytes(b"version: \xff\xfe\n")
    with pytest.raises(PointerError, match="production.yaml"):
        read_pointer(path)


def test_history_is_append_only_and_keeps_earlier_entries_verbatim(tmp_path: Path):
    path = tmp_path / "history.yaml"
    assert read_history(path) == []
    first = HistoryEntry(
        action="promote",
        version="v-1",
        previous_version=None,
        at="2026-01-01T00:00:00+00:00",
        reason="merge",
        pointer=_pointer("v-1"),
    )
    second = HistoryEntry(
        action="rollback",
        version="v-0",
        previous_version="v-1",
        at="2026-01-02T00:00:00+00:00",
        pointer=_pointer("v-0", "b" * 64),
    )
    append_history(path, first)
    before = yaml.safe_load(path.read_text())
    append_history(path, second)
    entries = read_history(path)
    assert entries == [first, second]
    assert yaml.safe_load(path.read_text())[0] == before[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: v-1\n", "expected a list"),
        ("- action: deploy\n  version: v-1\n", "invalid history entry"),
        ("- [unclosed\n", "not valid YAML"),
    ],
)
def test_a_broken_history_is_an_error_naming_the_file(tmp_path: Path, text: str, message: str):
    path = tmp_path / "history.yaml"
    path.write_text(text)
    with pytest.raises(PointerError, match=message) as caught:
        read_history(path)
    assert str(path) in str(caught.value)
