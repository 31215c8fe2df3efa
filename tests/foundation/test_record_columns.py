"""Records and model answers held by column, read as ordinary records."""

from __future__ import annotations

import pickle

import orjson
import pytest

from gitops_ml.record_columns import ModelAnswers, RecordColumns


def test_record_columns_behave_as_records() -> None:
    cols = RecordColumns(("a", "b"), ([1, 2, 3], ["x", None, "z"]))
    assert len(cols) == 3
    assert cols[1] == {"a": 2, "b": None}
    assert list(cols[1:]) == [{"a": 2, "b": None}, {"a": 3, "b": "z"}]
    assert list(pickle.loads(pickle.dumps(cols))) == list(cols)
    assert cols.column("b") == ["x", None, "z"]
    with pytest.raises(KeyError):
        cols.column("c")
    with pytest.raises(ValueError, match="different lengths"):
        RecordColumns(("a", "b"), ([1], [1, 2]))


def test_model_answers_read_as_the_answer_dicts() -> None:
    answers = ModelAnswers(["no", "yes"], [0.25, 0.75], ("no", "yes"), [[0.75, 0.25], [0.25, 0.75]])
    expected = [
        {"prediction": "no", "score": 0.25, "probabilities": {"no": 0.75, "yes": 0.25}},
        {"prediction": "yes", "score": 0.75, "probabilities": {"no": 0.25, "yes": 0.75}},
    ]
    assert len(answers) == 2 and list(answers) == expected
    assert answers[1] == expected[1] and list(answers[1:]) == expected[1:]
    # a batch's response rows: request_id first, then the answer, in the order clients see
    rows = answers.with_ids(["r0", "r1"])
    assert orjson.dumps(rows) == orjson.dumps([{"request_id": f"r{i}", **e} for i, e in enumerate(expected)])
    assert list(pickle.loads(pickle.dumps(answers))) == expected


def test_regression_answers_have_no_probabilities() -> None:
    answers = ModelAnswers([1.5, -2.0], [1.5, -2.0])
    assert list(answers) == [
        {"prediction": 1.5, "score": 1.5, "probabilities": None},
        {"prediction": -2.0, "score": -2.0, "probabilities": None},
    ]
    assert answers.with_ids(["a", "b"])[1] == {
        "request_id": "b",
        "prediction": -2.0,
        "score": -2.0,
        "probabilities": None,
    }


@pytest.mark.parametrize("classes", [2, 3, 4])
def test_probabilities_follow_the_class_keys_for_any_class_count(classes: int) -> None:
    keys = tuple(f"c{k}" for k in range(classes))
    rows = [[(k + i) / 10 for k in range(classes)] for i in range(3)]
    answers = ModelAnswers(["c0"] * 3, [0.1] * 3, keys, rows)
    assert [a["probabilities"] for a in answers] == [dict(zip(keys, row, strict=True)) for row in rows]
