"""Runs deepchecks suites inside the deepchecks environment (envs/deepchecks), never in the core.

deepchecks 0.19.1 needs numpy<2 while the core runs on numpy 2, so this module is executed by the
deepchecks environment's own interpreter (`python -I deepchecks_runner.py serve`). It imports only
the standard library, pandas, numpy and deepchecks: NOT gitops_ml. The interface is narrow:

- in: a request folder holding `request.json` (checks, columns, task) and Parquet files (the sampled
  datasets, predictions, probabilities), plus feature importances as JSON;
- out: `result.json` in the same folder (one outcome per check) and, when asked, the suite's HTML.

`serve` handles one request folder per line on stdin and answers one JSON line per request, so a
whole PR check pays for one process and one deepchecks import. `catalogue` prints what the core
needs to validate config without importing deepchecks (check kinds, parameters, conditions).

Outcome statuses are the core's: "passed", "warned", "failed", "error", "not_run", "info".
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

PROTOCOL = 1
# Exit status when deepchecks itself cannot be imported: the environment is broken, not the request.
EXIT_BROKEN_ENV = 3

_CATEGORY_STATUS = {"PASS": "passed", "WARN": "warned", "FAIL": "failed", "ERROR": "error"}
_WORST_FIRST = ("failed", "error", "not_run", "warned", "passed", "info")
# Parameter names most checks accept through **kwargs (deepchecks' base classes read them).
_KWARGS_ACCEPTED = {"n_samples", "random_state", "columns", "ignore_columns", "n_top_columns", "n_to_show"}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _param_names_problem(cls: type, params: dict[str, Any]) -> str | None:
    signature = inspect.signature(cls.__init__)  # type: ignore[misc]  # the class's own, self included
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        # Most checks take **kwargs and silently ignore unknown names; check what we can.
        accepted = {n for n, p in signature.parameters.items() if p.kind is not p.VAR_KEYWORD}
        unknown = sorted(set(params) - accepted - _KWARGS_ACCEPTED - {"self"})
        return f"unknown parameter(s) {unknown}" if unknown else None
    try:
        signature.bind(None, **params)
    except TypeError as exc:
        return str(exc)
    return None


def _instantiate(cls: type, spec: dict[str, Any]) -> Any:
    params = dict(spec.get("params") or {})
    init = inspect.signature(cls.__init__)  # type: ignore[misc]  # the class's own, self included
    if "random_state" in init.parameters and spec.get("random_state") is not None:
        params.setdefault("random_state", spec["random_state"])
    problem = _param_names_problem(cls, params)
    if problem:
        raise ValueError(f"params: {problem}")
    check = cls(**params)
    for method_name, kwargs in spec.get("conditions") or []:
        getattr(check, method_name)(**(kwargs or {}))
    return check


def _dataset_suffix(result: Any) -> str:
    header = str(getattr(result, "header", "") or "")
    for kind in ("Train", "Test"):
        if header.endswith(f"{kind} Dataset"):
            return f"[{kind.lower()}] "
    return ""


def _outcome(results: list[Any]) -> dict[str, Any]:
    from deepchecks.core.check_result import CheckFailure
    from deepchecks.core.errors import DeepchecksNotSupportedError, NotEnoughSamplesError

    if not results:
        return {"status": "not_run", "conditions": [], "error": "deepchecks returned no result"}
    statuses: list[str] = []
    conditions: list[list[str]] = []
    errors: list[str] = []
    several = len(results) > 1
    for result in results:
        where = _dataset_suffix(result) if several else ""
        if isinstance(result, CheckFailure):
            not_applicable = isinstance(
                result.exception, (DeepchecksNotSupportedError, NotEnoughSamplesError)
            )
            statuses.append("not_run" if not_applicable else "error")
            errors.append(f"{where}{_describe(result.exception)}")
            continue
        if not result.conditions_results:
            statuses.append("info")
            continue
        for cond in result.conditions_results:
            status = _CATEGORY_STATUS[cond.category.value]
            conditions.append([f"{where}{cond.name}", status, str(cond.details or "")])
            statuses.append(status)
    worst = min(statuses, key=_WORST_FIRST.index)
    return {"status": worst, "conditions": conditions, "error": "; ".join(errors) or None}


def _dataset(path: Path, request: dict[str, Any], name: str) -> Any:
    import pandas as pd
    from deepchecks.tabular import Dataset

    frame = pd.read_parquet(path)
    label = request.get("label")
    return Dataset(
        frame,
        label=label if label in frame.columns else None,
        features=list(request["features"]),
        cat_features=list(request["cat_features"]),
        label_type=request.get("label_type"),
        dataset_name=name,
    )


def _write_html(suite_result: Any, path: Path) -> None:
    """Atomically (deepchecks would rename on collision, so hand it an open file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            suite_result.save_as_html(handle, as_widget=False)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _static_inputs(folder: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Predictions, probabilities and feature importances the core computed."""
    import pandas as pd

    out: dict[str, Any] = {}
    for kind in ("train", "test"):
        pred = folder / f"pred_{kind}.parquet"
        if pred.exists():
            out[f"y_pred_{kind}"] = pd.read_parquet(pred)["y_pred"].to_numpy()
        proba = folder / f"proba_{kind}.parquet"
        if proba.exists():
            out[f"y_proba_{kind}"] = pd.read_parquet(proba).to_numpy()
    if request.get("model_classes") is not None:
        out["model_classes"] = list(request["model_classes"])
    return out


def run_request(folder: Path) -> dict[str, Any]:
    """Run one suite request; every configured check gets an outcome, in config order."""
    import pandas as pd
    from deepchecks.core.suite import SuiteResult
    from deepchecks.tabular import Suite
    from deepchecks.tabular import checks as checks_module

    started = time.perf_counter()
    request = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    outcomes: list[dict[str, Any] | None] = []
    groups: dict[bool, list[tuple[int, Any]]] = {False: [], True: []}
    for position, spec in enumerate(request["checks"]):
        cls = getattr(checks_module, spec["check"], None)
        if cls is None:
            outcomes.append(
                {"status": "error", "conditions": [], "error": f"no deepchecks check {spec['check']}"}
            )
            continue
        try:
            check = _instantiate(cls, spec)
        except Exception as exc:  # bad param values are a failed check, not a crash of the run
            outcomes.append({"status": "error", "conditions": [], "error": _describe(exc)})
            continue
        if not isinstance(check, Suite.supported_checks()):
            error = f"{spec['check']} cannot run in a deepchecks Suite (it compares several models)"
            outcomes.append({"status": "error", "conditions": [], "error": error})
            continue
        outcomes.append(None)
        groups[bool(spec.get("feature_importance"))].append((position, check))

    datasets = {kind: _dataset(folder / f"{kind}.parquet", request, kind) for kind in request["datasets"]}
    run_kwargs: dict[str, Any] = {
        "train_dataset": datasets.get("train", datasets.get("data")),
        "test_dataset": datasets.get("test"),
        "with_display": bool(request.get("html_path")),
        **_static_inputs(folder, request),
    }
    importance = request.get("feature_importance")
    results: list[Any] = []
    title = request.get("title", "deepchecks")
    for with_importance, group in groups.items():
        if not group:
            continue
        kwargs = dict(run_kwargs)
        if with_importance and importance is not None:
            kwargs["feature_importance"] = pd.Series(importance, dtype="float64")
        results += Suite(title, *[check for _, check in group]).run(**kwargs).results
    by_check: dict[int, list[Any]] = {}
    for result in results:
        by_check.setdefault(id(result.check), []).append(result)
    for with_importance in groups:
        for position, check in groups[with_importance]:
            outcomes[position] = _outcome(by_check.get(id(check), []))
    html_path = request.get("html_path")
    if html_path and results:
        _write_html(SuiteResult(title, results), Path(html_path))
    return {
        "protocol": PROTOCOL,
        "outcomes": outcomes,
        "html_path": html_path if html_path and results else None,
        "seconds": time.perf_counter() - started,
    }


def _quiet() -> None:
    """deepchecks' progress bars (INFO) and its pandas/scikit-learn FutureWarnings are noise here."""
    from deepchecks.utils.logger import set_verbosity

    set_verbosity(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, message=".*pkg_resources.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _patch_static_regressor() -> None:
    """scikit-learn accepts a regressor's prediction method only by the name `predict`; deepchecks'
    stand-in for static predictions names it `_predict`, so every regression scorer check failed
    ("_DummyModel should either be a classifier ... Got a regressor with response_method=_predict")."""
    from deepchecks.tabular import context

    context._DummyModel._predict.__name__ = "predict"
    context._DummyModel._predict_proba.__name__ = "predict_proba"


def _one_thread() -> None:
    # deepchecks makes many small predict-like calls; OpenMP threads oversubscribe a 2-core runner.
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="openmp")
    except ImportError:
        pass


def serve() -> int:
    """One request folder per stdin line -> one JSON line on the real stdout."""
    answer = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # whatever deepchecks prints must not corrupt the protocol
    sys.stdout = sys.stderr
    warnings.filterwarnings("ignore", category=UserWarning, message=".*pkg_resources.*")
    try:
        import deepchecks.tabular  # noqa: F401  (the ~3.5 s import, paid once)
    except Exception as exc:
        answer.write(json.dumps({"protocol": PROTOCOL, "ready": False, "error": _describe(exc)}) + "\n")
        return EXIT_BROKEN_ENV
    _quiet()
    _one_thread()
    _patch_static_regressor()
    import deepchecks

    answer.write(
        json.dumps({"protocol": PROTOCOL, "ready": True, "deepchecks": deepchecks.__version__}) + "\n"
    )
    for line in sys.stdin:
        folder = line.strip()
        if not folder:
            continue
        try:
            response = run_request(Path(folder))
        except Exception as exc:
            response = {"protocol": PROTOCOL, "error": _describe(exc), "traceback": traceback.format_exc()}
        answer.write(json.dumps(response) + "\n")
    return 0


def _kind(cls: type) -> str:
    from deepchecks.tabular.base_checks import ModelOnlyCheck, SingleDatasetCheck, TrainTestCheck

    if issubclass(cls, ModelOnlyCheck):
        return "model_only"
    if issubclass(cls, TrainTestCheck):
        return "train_test"
    if issubclass(cls, SingleDatasetCheck):
        return "single_dataset"
    return "other"


def _probe_inputs(task: str) -> dict[str, Any]:
    """Small seeded data with static predictions, as the core hands them over, for one task."""
    import numpy as np
    import pandas as pd
    from deepchecks.tabular import Dataset

    rng = np.random.default_rng(0)
    n = 400

    def frame(offset: int) -> pd.DataFrame:
        x = rng.normal(size=(n, 3))
        df = pd.DataFrame(x, columns=["a", "b", "c"], index=pd.RangeIndex(offset, offset + n))
        df["kind"] = rng.choice(["p", "q", "r"], n)
        score = x[:, 0] + 0.5 * x[:, 1]
        if task == "regression":
            df["y"] = score + rng.normal(scale=0.3, size=n)
        elif task == "binary":
            df["y"] = (score > 0).astype("int64")
        else:
            df["y"] = np.digitize(score, [-0.5, 0.5]).astype("int64")
        return df

    inputs: dict[str, Any] = {}
    for kind, offset in (("train", 0), ("test", n)):
        df = frame(offset)
        inputs[f"{kind}_dataset"] = Dataset(df, label="y", cat_features=["kind"], label_type=task)
        y = df["y"].to_numpy()
        if task == "regression":
            inputs[f"y_pred_{kind}"] = y + rng.normal(scale=0.2, size=n)
            continue
        classes = 2 if task == "binary" else 3
        flip = rng.random(n) < 0.15
        pred = np.where(flip, rng.integers(0, classes, n), y)
        proba = np.full((n, classes), 0.1 / (classes - 1))
        proba[np.arange(n), pred] = 0.9
        inputs[f"y_pred_{kind}"] = pred
        inputs[f"y_proba_{kind}"] = proba
    if task != "regression":
        inputs["model_classes"] = list(range(2 if task == "binary" else 3))
    inputs["feature_importance"] = pd.Series({"a": 0.5, "b": 0.3, "c": 0.1, "kind": 0.1})
    return inputs


def probe(names: list[str]) -> dict[str, dict[str, str | None]]:
    """Per task, None when the check runs here on static predictions, else deepchecks' reason."""
    from deepchecks.core.check_result import CheckFailure
    from deepchecks.core.errors import DeepchecksNotSupportedError
    from deepchecks.tabular import Suite
    from deepchecks.tabular import checks as checks_module

    out: dict[str, dict[str, str | None]] = {name: {} for name in names}
    for task in ("binary", "multiclass", "regression"):
        inputs = _probe_inputs(task)
        for name in names:
            check = getattr(checks_module, name)()
            results = Suite(name, check).run(**inputs, with_display=False).results
            failures = [r for r in results if isinstance(r, CheckFailure)]
            if not failures:
                out[name][task] = None
                continue
            exc = failures[0].exception
            if "unable to train an error model" in str(exc):
                out[name][task] = None  # depends on the data (the probe's is too simple), not on the task
                continue
            irrelevant = isinstance(exc, DeepchecksNotSupportedError) or "irrelevant" in str(exc)
            kind = "does not apply" if irrelevant else "fails in our deepchecks environment"
            out[name][task] = f"{kind}: {str(exc).splitlines()[0][:200]}"
    return out


def catalogue() -> dict[str, Any]:
    """Every tabular check: kind, parameters, conditions and deepchecks' default conditions."""
    import deepchecks
    from deepchecks.tabular import Suite
    from deepchecks.tabular import checks as checks_module
    from deepchecks.tabular.suites import full_suite

    defaults: dict[str, list[str]] = {}
    for check in full_suite().checks.values():
        fresh = type(check)()
        names = [c.name for c in check._conditions.values()]
        methods = [m for m in dir(fresh) if m.startswith("add_condition_")]
        chosen = []
        for name in names:  # which no-argument condition method adds this condition name
            for method in methods:
                fresh_probe = type(check)()
                try:
                    getattr(fresh_probe, method)()
                except TypeError:
                    continue
                if [c.name for c in fresh_probe._conditions.values()] == [name]:
                    chosen.append(method)
                    break
        defaults[type(check).__name__] = chosen
    out: dict[str, Any] = {}
    for name in sorted(checks_module.__all__):
        cls = getattr(checks_module, name)
        signature = inspect.signature(cls.__init__)
        out[name] = {
            "kind": kind if (kind := _kind(cls)) else "other",
            "group": cls.__module__.split(".")[3] if cls.__module__.count(".") >= 3 else "",
            "in_suite": issubclass(cls, Suite.supported_checks()),
            "params": [
                n for n, p in signature.parameters.items() if n != "self" and p.kind is not p.VAR_KEYWORD
            ],
            "var_keyword": any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()),
            "conditions": {
                m: [n for n, p in inspect.signature(getattr(cls, m)).parameters.items() if n != "self"]
                for m in sorted(dir(cls))
                if m.startswith("add_condition_")
            },
            "default_conditions": defaults.get(name, []),
        }
    runnable = [name for name, info in out.items() if info["in_suite"]]
    for name, tasks in probe(runnable).items():
        out[name]["tasks"] = tasks
    return {"deepchecks": deepchecks.__version__, "checks": out}


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "serve":
        return serve()
    if command == "catalogue":
        warnings.filterwarnings("ignore")
        _patch_static_regressor()
        json.dump(catalogue(), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print("usage: deepchecks_runner.py serve|catalogue", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
