"""The one YAML reader and pydantic error formatter every config, pointer and manifest goes through."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from gitops_ml.parsing import error_lines, key_path, load_yaml, read_yaml


class _Boom(Exception):
    pass


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[_Item]
    tags: dict[str, int] = {}
    counts: dict[int, int] = {}


def _errors(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Doc.model_validate(data)
    return caught.value


def test_load_yaml_names_the_source_and_raises_the_callers_error() -> None:
    assert load_yaml("a: 1\n", "x.yaml", _Boom) == {"a": 1}
    assert load_yaml(b"", "x.yaml", _Boom) is None
    with pytest.raises(_Boom, match=r"^x\.yaml: not valid YAML: "):
        load_yaml("a: [1\n", "x.yaml", _Boom)
    with pytest.raises(_Boom, match=r"^x\.yaml: not UTF-8 text: "):
        load_yaml(b"a: \xff\n", "x.yaml", _Boom)


def test_read_yaml_names_a_file_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("- 1\n")
    assert read_yaml(tmp_path / "ok.yaml", _Boom) == [1]
    with pytest.raises(_Boom, match=r"missing\.yaml: cannot read: "):
        read_yaml(tmp_path / "missing.yaml", _Boom)


def test_key_paths_index_lists_and_name_items_that_have_a_name() -> None:
    data = {"items": [{"name": "a", "size": 1}, {"name": "b", "size": "big"}, {"size": 2}]}
    lines = error_lines(_errors(data), data)
    assert "items[1] (b).size: Input should be a valid integer, unable to parse string as an integer" in lines
    assert "items[2].name: Field required" in lines
    assert key_path(("items", 1, "size")) == "items[1].size"  # without the data: no names
    assert key_path(()) == "(top level)"


def test_a_refused_dict_key_is_reported_at_the_key_and_inputs_only_when_asked() -> None:
    data = {"items": [], "tags": {"x": "many"}, "counts": {"seven": 1}, "colour": "red"}
    exc = _errors(data)
    assert error_lines(exc, data) == [
        "tags.x: Input should be a valid integer, unable to parse string as an integer",
        "counts.seven: Input should be a valid integer, unable to parse string as an integer",
        "colour: Extra inputs are not permitted",
    ]
    assert error_lines(exc, data, limit=1, with_input=True) == [
        "tags.x: Input should be a valid integer, unable to parse string as an integer (got 'many')"
    ]
    long = {"items": [{"name": "a", "size": "x" * 200}]}
    (line,) = error_lines(_errors(long), long, with_input=True)
    assert line.endswith("…)") and len(line) < 200
