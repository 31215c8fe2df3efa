"""ONNX Runtime against our compiled fast path and the scikit-learn pipeline, in one run.

For each estimator family serving allows (logistic regression, random forest, gradient boosting,
HistGradientBoosting; a regression counterpart of each), the project's own preprocessing
(`training.pipeline.build_preprocessor`: impute, scale, one-hot) is fit on generated churn rows
and the whole pipeline is converted with skl2onnx. Reported per estimator:
- whether skl2onnx converts it (and the error when it does not);
- one-row and 1000-row latency: scikit-learn pipeline (DataFrame in), our fast path (records in),
  ONNX Runtime (records -> its per-column input arrays -> run; one intra-op thread, as serving);
- exactness against scikit-learn on held-out rows: max abs probability (or value) error and the
  count of rows whose predicted class differs, for the fast path and for ONNX.

onnxruntime and skl2onnx are NOT project dependencies (benchmark only). Install them beside the
project, e.g. into a scratch environment that sees the project's packages:

    python -m venv /tmp/onnx
    .venv/bin/python -c 'import site; print(f"import site; site.addsitedir({site.getsitepackages()[0]!r})")' \\
        > /tmp/onnx/lib/python3.11/site-packages/project.pth
    .venv/bin/uv pip install --python /tmp/onnx/bin/python --no-deps onnxruntime==1.31.1 \\
        skl2onnx==1.20.0 onnx protobuf flatbuffers ml_dtypes typing_extensions
    /tmp/onnx/bin/python benchmarks/onnx_compare.py [--rows 3000] [--seconds 1.5]

Exits 2 with this hint when they are missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

BATCH = 1000
# ONNX Runtime 1.31 with skl2onnx 1.20's default (latest) ai.onnx.ml opset fails to build
# HistGradientBoosting's TreeEnsemble node (measured); opset 3 is what both support.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
INSTALL_HINT = (__doc__ or "").split("Install them beside the\nproject, e.g. ", 1)[-1].strip()
REGRESSION_TARGET = "total_charges"  # a numeric column of the churn rows, dropped from the features

CLASSIFIERS = {
    "LogisticRegression": ("sklearn.linear_model", "LogisticRegression", {"max_iter": 500}),
    "RandomForestClassifier": ("sklearn.ensemble", "RandomForestClassifier", {"n_estimators": 100}),
    "GradientBoostingClassifier": ("sklearn.ensemble", "GradientBoostingClassifier", {"n_estimators": 100}),
    "HistGradientBoostingClassifier": (
        "sklearn.ensemble",
        "HistGradientBoostingClassifier",
        {"max_iter": 200},
    ),
}
REGRESSORS = {
    "Ridge": ("sklearn.linear_model", "Ridge", {}),
    "RandomForestRegressor": ("sklearn.ensemble", "RandomForestRegressor", {"n_estimators": 100}),
    "GradientBoostingRegressor": ("sklearn.ensemble", "GradientBoostingRegressor", {"n_estimators": 100}),
    "HistGradientBoostingRegressor": ("sklearn.ensemble", "HistGradientBoostingRegressor", {"max_iter": 200}),
}


def _per_call_us(run: Any, seconds: float) -> float:
    run()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run()
        calls += 1
    return (time.perf_counter() - started) / calls * 1e6


class OnnxScorer:
    """The converted pipeline: records -> one [n, 1] array per input column -> InferenceSession.run.

    ONNX string tensors cannot hold a missing value; a missing category is sent as the
    imputer's own fill value (what the pipeline's SimpleImputer would put there), a missing
    number as NaN."""

    def __init__(self, onnx_model: Any, numeric: list[str], categorical: list[str], fill: str):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.numeric, self.categorical, self.fill = numeric, categorical, fill
        self.outputs = [o.name for o in self.session.get_outputs()]

    def feed(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        feed = {
            c: np.array([[np.nan if r.get(c) is None else r[c]] for r in records], dtype=np.float32)
            for c in self.numeric
        }
        for c in self.categorical:
            feed[c] = np.array(
                [[self.fill if r.get(c) is None else str(r[c])] for r in records], dtype=object
            )
        return feed

    def run(self, records: list[dict[str, Any]]) -> list[Any]:
        return self.session.run(self.outputs, self.feed(records))


def convert(pipeline: Any, numeric: list[str], categorical: list[str]) -> tuple[Any, str]:
    """(ONNX model, how): the pipeline as fitted, or, when skl2onnx refuses the categorical imputer
    (its missing marker is NaN, and skl2onnx converts only string markers), a copy whose imputer
    marks missing with a string no input holds; `OnnxScorer` sends the fill for a missing value,
    so the copy computes the same thing."""
    import copy

    try:
        return _convert(pipeline, numeric, categorical), "as fitted"
    except NotImplementedError:
        patched = copy.deepcopy(pipeline)
        imputer = patched.named_steps["preprocess"].named_transformers_["categorical"].named_steps["imputer"]
        imputer.missing_values = "\x00missing\x00"
        return _convert(patched, numeric, categorical), "imputer marker patched"


def _convert(pipeline: Any, numeric: list[str], categorical: list[str]) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial = [(c, FloatTensorType([None, 1])) for c in numeric] + [
        (c, StringTensorType([None, 1])) for c in categorical
    ]
    options = {id(pipeline[-1]): {"zipmap": False}} if hasattr(pipeline[-1], "predict_proba") else None
    return convert_sklearn(pipeline, initial_types=initial, options=options, target_opset=TARGET_OPSET)


def measure(
    name: str,
    class_path: tuple[str, str, dict[str, Any]],
    task: str,
    settings: Any,
    train: pd.DataFrame,
    test: pd.DataFrame,
    seconds: float,
) -> dict[str, Any]:
    import importlib

    from serving_bench import records_of
    from sklearn.pipeline import Pipeline

    from gitops_ml.serving.fast_path import NotCompilable, compile_pipeline
    from gitops_ml.training.pipeline import CATEGORICAL_FILL, build_preprocessor, prepare_features

    module, cls, params = class_path
    features = settings.features
    numeric = [c for c in features.numeric if c != REGRESSION_TARGET or task != "regression"]
    categorical = list(features.categorical)
    run_settings = settings.model_copy(
        update={"features": features.model_copy(update={"numeric": numeric, "all": [*numeric, *categorical]})}
    )
    columns = [*numeric, *categorical]
    estimator = getattr(importlib.import_module(module), cls)(**params)
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=0)
    pipeline = Pipeline([("preprocess", build_preprocessor(run_settings)), ("model", estimator)])
    target = settings.dataset.target if task != "regression" else REGRESSION_TARGET
    X = prepare_features(train[columns], run_settings)
    y = train[target] if task != "regression" else train[target].fillna(0.0)
    pipeline.fit(X, y)
    records = records_of(test, columns)
    X_test = prepare_features(pd.DataFrame.from_records(records, columns=columns), run_settings)
    out: dict[str, Any] = {"estimator": name, "task": task}

    def sk(rows: pd.DataFrame) -> np.ndarray:
        return np.asarray(
            pipeline.predict_proba(rows) if task != "regression" else pipeline.predict(rows), dtype=float
        )

    reference = sk(X_test)
    one, many = X_test.iloc[:1], X_test.iloc[:BATCH]
    out["sklearn_1_us"] = _per_call_us(lambda: sk(one), seconds)
    out["sklearn_1000_us"] = _per_call_us(lambda: sk(many), seconds)
    try:
        compiled = compile_pipeline(pipeline, numeric, categorical)
    except NotCompilable as exc:
        out["fast_path"] = f"not compiled: {exc}"
    else:

        def fast(rows: list[dict[str, Any]]) -> np.ndarray:
            return compiled.predict_proba(rows) if task != "regression" else compiled.predict_values(rows)

        got = fast(records)
        out["fast_path"] = compiled.description
        out["fast_max_abs_error"] = float(np.max(np.abs(got - reference)))
        if task != "regression":
            out["fast_class_differs"] = int((got.argmax(axis=1) != reference.argmax(axis=1)).sum())
        out["fast_1_us"] = _per_call_us(lambda: fast(records[:1]), seconds)
        out["fast_1000_us"] = _per_call_us(lambda: fast(records[:BATCH]), seconds)
    try:
        onnx_model, how = convert(pipeline, numeric, categorical)
        scorer = OnnxScorer(onnx_model, numeric, categorical, CATEGORICAL_FILL)
        result = scorer.run(records)
    except Exception as exc:  # noqa: BLE001 - a converter gap is a result to report, not a crash
        root: BaseException = exc
        while root.__context__ is not None:  # the converter wraps the cause in a long ValueError
            root = root.__context__
        out["onnx"] = f"not converted: {type(root).__name__}: {str(root).splitlines()[0][:120]}"
        return out
    got = np.asarray(result[1] if task != "regression" else result[0], dtype=float).reshape(reference.shape)
    out["onnx"] = f"converted ({how})"
    out["onnx_max_abs_error"] = float(np.max(np.abs(got - reference)))
    if task != "regression":
        out["onnx_class_differs"] = int((got.argmax(axis=1) != reference.argmax(axis=1)).sum())
    out["onnx_1_us"] = _per_call_us(lambda: scorer.run(records[:1]), seconds)
    out["onnx_1000_us"] = _per_call_us(lambda: scorer.run(records[:BATCH]), seconds)
    feed = scorer.feed(records[:1])
    out["onnx_run_only_1_us"] = _per_call_us(lambda: scorer.session.run(scorer.outputs, feed), seconds)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3000, help="training rows (the same count is held out)")
    parser.add_argument("--seconds", type=float, default=1.5, help="timing per measurement")
    args = parser.parse_args(argv)
    try:
        import onnxruntime
        import skl2onnx
    except ImportError as exc:
        print(f"onnx_compare: {exc.name} is not installed (benchmark only, not a project dependency).")
        print(INSTALL_HINT)
        return 2
    from serving_bench import bench_settings
    from threadpoolctl import threadpool_limits

    from gitops_ml.data.generator import generate_month

    settings = bench_settings(REPO)
    train = generate_month("2026-01", args.rows, seed=0)
    test = generate_month("2026-02", max(args.rows, BATCH + 1), seed=1)
    load_before = os.getloadavg()
    results = []
    with threadpool_limits(limits=1):
        for task, families in (("binary", CLASSIFIERS), ("regression", REGRESSORS)):
            for name, spec in families.items():
                results.append(measure(name, spec, task, settings, train, test, args.seconds))
                print(f"measured {name}", file=sys.stderr)
    load = os.getloadavg()
    print(
        f"\n## ONNX Runtime {onnxruntime.__version__} (skl2onnx {skl2onnx.__version__}) vs the fast path "
        f"({os.cpu_count()} cores; load {load_before[0]:.1f} before, {load[0]:.1f} after; {args.rows} "
        f"training rows, {len(test)} held out)\n"
    )
    print(
        "| estimator | ONNX | max abs error vs sklearn: fast path / ONNX (float32) | class differs: fast / ONNX "
        "| 1 row: sklearn / fast / ONNX (run only) | 1000 rows: sklearn / fast / ONNX |"
    )
    print("|---|---|---|---|---|---|")

    def us(key: str, r: dict[str, Any]) -> str:
        value = r.get(key)
        return "-" if value is None else (f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} us")

    for r in results:
        fast_err = r.get("fast_max_abs_error")
        onnx_err = r.get("onnx_max_abs_error")
        print(
            f"| {r['estimator']} | {r['onnx']} | {'-' if fast_err is None else f'{fast_err:.1e}'} / "
            f"{'-' if onnx_err is None else f'{onnx_err:.1e}'} | {r.get('fast_class_differs', '-')} / "
            f"{r.get('onnx_class_differs', '-')} | {us('sklearn_1_us', r)} / {us('fast_1_us', r)} / "
            f"{us('onnx_1_us', r)} ({us('onnx_run_only_1_us', r)}) | {us('sklearn_1000_us', r)} / "
            f"{us('fast_1000_us', r)} / {us('onnx_1000_us', r)} |"
        )
    print()
    for r in results:
        print(f"- {r['estimator']}: fast path = {r.get('fast_path')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
