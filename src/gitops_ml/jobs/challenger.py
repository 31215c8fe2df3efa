"""The challenger use case: propose a checked candidate as challenger, promote it, retire it.

Each is a change of `deploy/*.yaml` and (when asked) ONE commit, so on GitHub each is a reviewed pull
request, like a rollback. `propose` verifies the candidate the last PR check left (the same checks
as the deploy's publish job: a passing verdict, the skops allow-list, the sha256, this checkout's
config), publishes its artifact as promotion does, refuses what may not challenge production
(`registry.challenger`), and only then writes the file: a refusal leaves nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gitops_ml.config import Settings
from gitops_ml.registry.challenger import (
    ChallengerError,
    ChallengerPointer,
    DecisionPolicy,
    Mode,
    challenger_path,
    check_against_production,
    load_challenger,
    parse_challenger,
    read_challenger,
    require_compatible,
    validation_problems,
    write_challenger,
)

if TYPE_CHECKING:
    from gitops_ml.forge.retrain_pr import RetrainPrOutcome
    from gitops_ml.monitoring.challenger import ChallengerDecision
    from gitops_ml.registry.pointer import ProductionPointer
    from gitops_ml.registry.production import LoadedModel

ChallengerAction = Literal["proposed", "promoted", "retired", "noop"]
CACHE_DIR = Path(".gitops-ml/model-cache")


@dataclass(frozen=True)
class ChallengerOutcome:
    """What a challenger command changed, and the commit that recorded it (None: not asked, or a no-op)."""

    action: ChallengerAction
    version: str | None  # the challenger's
    production_version: str | None  # production's before the change
    path: Path  # deploy/challenger.yaml
    message: str
    commit: str | None = None

    @property
    def changed(self) -> bool:
        return self.action != "noop"


def propose_challenger(
    settings: Settings,
    checked_dir: str | Path,
    *,
    mode: Mode = "shadow",
    fraction: float | None = None,
    sticky_field: str | None = None,
    policy: DecisionPolicy | None = None,
    expect_commit: str | None = None,
    commit: bool = False,
    repo_dir: str | Path = ".",
    cache_dir: Path = CACHE_DIR,
) -> ChallengerOutcome:
    """Write `deploy/challenger.yaml` for the candidate in `checked_dir` (a PR check's --out folder)."""
    from pydantic import ValidationError

    from gitops_ml.jobs.promote import verify_checked_candidate
    from gitops_ml.registry.production import load_production
    from gitops_ml.registry.promote import publish_candidate

    registry = settings.registry
    path = challenger_path(registry)
    meta = verify_checked_candidate(checked_dir, settings, expect_commit=expect_commit)
    production = load_production(registry, Path(cache_dir))
    if production is None:
        raise ChallengerError(f"{registry.pointer}: there is no production model to challenge")
    current = read_challenger(path)
    if current is not None and current.version != meta.version:
        raise ChallengerError(
            f"{path}: challenger {current.version} is still running; promote or retire it first"
        )
    fields: dict[str, object] = {"mode": mode, "sticky_field": sticky_field}
    if fraction is not None:
        fields["fraction"] = fraction
    if policy is not None:
        fields["policy"] = policy
    try:
        # validated before anything is published: a bad fraction publishes nothing
        draft = ChallengerPointer(version=meta.version, artifact_uri="-", sha256=meta.sha256, **fields)
    except ValidationError as exc:
        raise ChallengerError(f"challenger propose: {validation_problems(exc)}") from exc
    # the same refusals serving and `config check` apply: production's version or artifact
    check_against_production(draft, production.pointer, Path(checked_dir))
    # judged on the candidate's metadata before publishing: a refusal publishes nothing
    require_compatible(meta, production.metadata, path)
    pointer = publish_candidate(Path(checked_dir) / "candidate", registry)
    challenger = ChallengerPointer(
        **pointer.model_dump(exclude={"promoted_at"}),
        production_version=production.version,
        **fields,
    )
    # the stored artifact, loaded as serving will load it: sha256, allow-list, contract vs production
    load_challenger(challenger, production, Path(cache_dir), path)
    if current is not None and current.model_dump(exclude={"started_at"}) == challenger.model_dump(
        exclude={"started_at"}
    ):
        return ChallengerOutcome("noop", current.version, production.version, path, "challenger unchanged")
    write_challenger(path, challenger)
    message = (
        f"Propose challenger {challenger.version} ({_how(challenger)}) against production {production.version}\n\n"
        f"Artifact: {challenger.artifact_uri}\nDecision: {_policy_text(challenger.policy)}"
    )
    return _committed(
        ChallengerOutcome("proposed", challenger.version, production.version, path, message),
        settings,
        commit,
        repo_dir,
    )


def promote_challenger(
    settings: Settings,
    *,
    reason: str = "",
    commit: bool = False,
    repo_dir: str | Path = ".",
    cache_dir: Path = CACHE_DIR,
) -> ChallengerOutcome:
    """Production becomes the challenger (pointer + history entry); the challenger file goes.

    A developer's command: both artifacts are downloaded and loaded first, and the challenger is
    refused exactly as serving refuses it (nothing is written on a refusal)."""
    challenger, production, path = load_deployed(
        settings, Path(cache_dir), missing="no challenger to promote"
    )
    return _write_promotion(
        settings, challenger, production.version, path, reason=reason, commit=commit, repo_dir=repo_dir
    )


def promote_judged(
    settings: Settings,
    decision: ChallengerDecision,
    *,
    pointer_sha256: str | None,
    reason: str = "",
    repo_dir: str | Path = ".",
) -> ChallengerOutcome:
    """The promotion the monitor decided, written from the pointer files alone: nothing is downloaded
    or loaded (the trusted job holds a write token; the token-free monitor already judged the models,
    and serving verifies the artifact again when it loads it)."""
    challenger, production, path = require_judged(settings, decision, pointer_sha256=pointer_sha256)
    return _write_promotion(
        settings, challenger, production.version, path, reason=reason, commit=False, repo_dir=repo_dir
    )


def require_judged(
    settings: Settings, decision: ChallengerDecision, *, pointer_sha256: str | None
) -> tuple[ChallengerPointer, ProductionPointer, Path]:
    """deploy/ as the monitor judged it, or ChallengerError (nothing is written): the challenger
    file's sha256 (`pointer_sha256`; None in a local monitor run, which read the file in this
    process), the challenger's and production's versions. Reads the pointer files only."""
    import hashlib

    from gitops_ml.registry.pointer import read_pointer

    path = challenger_path(settings.registry)
    if not path.is_file():
        raise ChallengerError(f"{path}: no challenger, but the monitor judged {decision.challenger_version}")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if pointer_sha256 is not None and actual != pointer_sha256:
        raise ChallengerError(
            f"{path}: sha256 {actual[:12]} is not the judged file's {pointer_sha256[:12]} "
            f"(the challenger changed after the monitor judged it); nothing {decision.action}d"
        )
    challenger = parse_challenger(data, path)
    production = read_pointer(settings.registry.pointer)
    found = {
        "challenger": challenger.version if challenger else None,
        "production": production.version if production else None,
    }
    judged = {"challenger": decision.challenger_version, "production": decision.production_version}
    for role, version in found.items():
        if version != judged[role]:
            raise ChallengerError(
                f"{path}: the monitor judged {role} {judged[role]!r}, deploy/ holds {version!r}; "
                f"nothing {decision.action}d"
            )
    assert challenger is not None and production is not None  # both versions matched
    check_against_production(challenger, production, path)
    return challenger, production, path


def _write_promotion(
    settings: Settings,
    challenger: ChallengerPointer,
    production_version: str,
    path: Path,
    *,
    reason: str,
    commit: bool,
    repo_dir: str | Path,
) -> ChallengerOutcome:
    """THE promote change: production pointer + history entry from the challenger pointer's own
    fields, the challenger file removed (and, when asked, one commit). Verification is the caller's."""
    from gitops_ml.registry.promote import promote_published

    change = promote_published(
        challenger.as_pointer(),
        settings.registry,
        reason=reason or f"challenger {challenger.version} promoted",
    )
    path.unlink(missing_ok=True)
    message = (
        f"Promote challenger {challenger.version} to production\n\n"
        f"Previous: {change.previous_version}. Artifact: {challenger.artifact_uri}\n"
        f"Reason: {reason or 'challenger promote'}"
    )
    return _committed(
        ChallengerOutcome("promoted", challenger.version, production_version, path, message),
        settings,
        commit,
        repo_dir,
    )


def load_deployed(
    settings: Settings, cache_dir: Path, *, missing: str
) -> tuple[ChallengerPointer, LoadedModel, Path]:
    """The challenger in deploy/ and production, both loaded, the challenger refused as serving
    refuses it; returns (challenger, production, the challenger file). ChallengerError `missing`
    (after the file's name) when there is no challenger."""
    from gitops_ml.registry.production import load_production

    path = challenger_path(settings.registry)
    challenger = read_challenger(path)
    if challenger is None:
        raise ChallengerError(f"{path}: {missing}")
    production = load_production(settings.registry, cache_dir)
    load_challenger(challenger, production, cache_dir, path)
    assert production is not None  # load_challenger refuses a missing production
    return challenger, production, path


def retire_challenger(
    settings: Settings, *, reason: str = "", commit: bool = False, repo_dir: str | Path = "."
) -> ChallengerOutcome:
    """Remove the challenger; production is untouched. A missing challenger is a no-op."""
    from gitops_ml.registry.pointer import read_pointer

    registry = settings.registry
    path = challenger_path(registry)
    if not path.exists():
        return ChallengerOutcome("noop", None, None, path, "no challenger to retire")
    try:
        challenger = read_challenger(path)
        version = challenger.version if challenger is not None else None
    except ChallengerError:
        version = None  # a malformed challenger can always be retired
    production = read_pointer(registry.pointer)
    path.unlink()
    message = (
        f"Retire challenger {version or '(unreadable file)'}\n\n"
        f"Production stays {production.version if production else 'none'}. Reason: {reason or 'challenger retire'}"
    )
    return _committed(
        ChallengerOutcome("retired", version, production.version if production else None, path, message),
        settings,
        commit,
        repo_dir,
    )


def _committed(
    outcome: ChallengerOutcome, settings: Settings, commit: bool, repo_dir: str | Path
) -> ChallengerOutcome:
    if not commit:
        return outcome
    from dataclasses import replace

    from gitops_ml.forge.git import GitRepo

    registry = settings.registry
    paths = [outcome.path]
    if outcome.action == "promoted":
        paths += [Path(registry.pointer), Path(registry.history)]
    commit_id = GitRepo(repo_dir).commit_paths(paths, outcome.message)
    return replace(outcome, commit=commit_id)


def _how(challenger: ChallengerPointer) -> str:
    if challenger.mode == "shadow":
        return "shadow"
    sticky = challenger.sticky_field or "request id"
    return f"canary, {challenger.fraction:g} of callers by {sticky}"


def _policy_text(policy: DecisionPolicy) -> str:
    return (
        f"{policy.metric or 'the primary metric'}, {policy.consecutive_windows} consecutive windows of "
        f">= {policy.min_paired_rows} labelled requests scored by both, improvement lower bound > "
        f"{policy.min_improvement:g}"
    )


# -- the monitor's decision ------------------------------------------------------------------------

PR_LABELS = {"promote": "challenger-promote", "retire": "challenger-retire"}
PR_BRANCH_PREFIX = "challenger/"


def judge_challenger(
    settings: Settings,
    store_url: str,
    production: LoadedModel,
    end: datetime,
    *,
    window: str | None = None,
) -> ChallengerDecision | None:
    """The policy's decision on the newest windows of labelled pairs; None when there is no challenger.

    Windows are [end - k*window, end - (k-1)*window) for k = policy.consecutive_windows .. 1, each
    holding the requests both models scored (this production version and this challenger) whose
    label has arrived; a window ending before the challenger started is not judged.
    """
    import pandas as pd

    from gitops_ml.evaluation.metrics import metric_names
    from gitops_ml.monitoring.challenger import decide, judge_window, paired_sides
    from gitops_ml.prediction_store import PredictionStore

    challenger = read_challenger(challenger_path(settings.registry))
    if challenger is None:
        return None
    policy = challenger.policy
    metric = policy.metric or settings.evaluation.primary_metric
    known = metric_names(settings.dataset.task)
    if metric not in known:
        raise ChallengerError(
            f"{challenger_path(settings.registry)}: policy.metric: {metric!r} is not a "
            f"{settings.dataset.task} metric (one of {', '.join(known)})"
        )
    length = pd.Timedelta(window or settings.monitoring.window).to_pytimedelta()
    started = pd.Timestamp(challenger.started_at).to_pydatetime()
    classes = getattr(production.pipeline, "classes_", None)
    task = settings.dataset.task
    store = PredictionStore(store_url)
    windows = []
    try:
        for k in range(policy.consecutive_windows, 0, -1):
            w_start, w_end = end - k * length, end - (k - 1) * length
            if w_end <= started:
                continue
            pairs = store.paired(w_start, w_end, challenger_version=challenger.version, labelled_only=True)
            pairs = pairs[pairs["production_version"] == production.version] if len(pairs) else pairs
            sides = paired_sides(
                task,
                pairs,
                classes=classes,
                positive_label=settings.dataset.positive_label,
                costs=settings.evaluation.costs,
            )
            windows.append(
                judge_window(
                    sides[0],
                    sides[1],
                    start=w_start,
                    end=w_end,
                    metric=metric,
                    min_rows=policy.min_paired_rows,
                    min_improvement=policy.min_improvement,
                    power=policy.power,
                    gates=settings.gates,
                    bootstrap=settings.evaluation.bootstrap,
                )
            )
    finally:
        store.dispose()
    return decide(
        windows,
        consecutive=policy.consecutive_windows,
        challenger_version=challenger.version,
        production_version=production.version,
    )


def open_decision_pr(
    settings: Settings,
    decision: ChallengerDecision,
    report: str,
    *,
    repo_dir: str | Path = ".",
    pointer_sha256: str | None = None,
) -> RetrainPrOutcome | None:
    """THE promote (or retire) PR for this challenger: opened once, then updated with each new window's
    evidence (a comment), never duplicated. None when the decision is to keep collecting.

    A promotion is written from the pointer files only (`promote_judged`), checked on the decision
    branch against what was judged (`pointer_sha256`: deploy/challenger.yaml's, from the bundle), so
    a branch started from a default branch that moved on cannot promote an unjudged challenger."""
    from gitops_ml.forge.git import GitRepo
    from gitops_ml.forge.retrain_pr import open_or_update_retraining_pr
    from gitops_ml.jobs.retrain import repository_forge

    if decision.action == "keep collecting":
        return None
    action = decision.action
    registry = settings.registry
    path = challenger_path(registry)
    repo = GitRepo(repo_dir)
    version = decision.challenger_version

    def prepare(_branch: str) -> None:
        # on the decision branch: a rerun finds the change already made there and commits nothing
        if not path.exists():
            return
        if action == "promote":
            promote_judged(
                settings,
                decision,
                pointer_sha256=pointer_sha256,
                reason=decision.reasons[0],
                repo_dir=repo_dir,
            )
        else:
            require_judged(settings, decision, pointer_sha256=pointer_sha256)
            retire_challenger(settings, reason=decision.reasons[0], repo_dir=repo_dir)

    forge, token = repository_forge(settings, repo, f"challenger {action} PR")
    paths = [path, Path(registry.pointer), Path(registry.history)] if action == "promote" else [path]
    verb = "Promote" if action == "promote" else "Retire"
    title = f"{verb} challenger {version} ({decision.reasons[0]})"
    return open_or_update_retraining_pr(
        forge,
        repo,
        branch_prefix=f"{PR_BRANCH_PREFIX}{action}-",
        label=PR_LABELS[action],
        base=settings.forge.base_branch,
        title=title[:250],
        body=report,
        paths_to_commit=paths,
        commit_message=f"{verb} challenger {version}\n\n{'; '.join(decision.reasons)}",
        date=version,
        token=token,
        prepare=prepare,
        comment_body="The monitor's newest windows still say "
        f"**{action}**: the evidence, updated.\n\n" + report,
    )
