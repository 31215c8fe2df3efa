"""The challenger pointer (`deploy/challenger.yaml`): a second model that meets live traffic beside production.

Same shape as the production pointer (what to load and its sha256) plus how it is served: `shadow`
(scores every request off the response path, production answers) or `canary` (a sticky `fraction` of
callers is answered by it), the request field that keeps a caller sticky, when it started and the
decision policy the monitor applies to the pairs it collects. Like the production pointer it is
written only by commands (`gitops-ml challenger propose|promote|retire`), each a commit, so on GitHub
each change is a reviewed pull request; no file means "no challenger" (the usual state).

Refused (ChallengerError, production keeps serving): a malformed file (the key path named), a canary
fraction outside (0, 1), the production version itself, an artifact whose sha256 does not match
(a wrong pointer or a tampered file), a model whose inputs or outputs differ from production's in a
way callers or the monitor would notice (`contract_problems`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gitops_ml.clock import utc_now_text
from gitops_ml.config import RegistryConfig
from gitops_ml.errors import ArtifactError, GitopsMLError
from gitops_ml.io_utils import atomic_write_text
from gitops_ml.parsing import error_lines, load_yaml
from gitops_ml.registry.artifacts import ArtifactMetadata
from gitops_ml.registry.pointer import ProductionPointer
from gitops_ml.registry.production import LoadedModel, load_pointed_model

CHALLENGER_FILE = Path("deploy/challenger.yaml")  # beside the production pointer (`challenger_path`)

Mode = Literal["shadow", "canary"]


class ChallengerError(GitopsMLError):
    """The challenger pointer is malformed or names a model that may not challenge production."""


class DecisionPolicy(BaseModel):
    """When the monitor's paired comparison on labelled requests scored by both models decides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str | None = Field(
        None, description="metric the decision is taken on; default: the config's evaluation.primary_metric"
    )
    consecutive_windows: int = Field(
        3, ge=1, description="windows in a row the challenger must be better (or worse) before a PR"
    )
    min_paired_rows: int = Field(
        200, ge=10, description="labelled requests scored by both models a window needs to be judged"
    )
    min_improvement: float = Field(
        0.0, ge=0, description="the lower bound of the paired interval of the improvement must exceed this"
    )
    power: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="power the 'labelled rows still needed' estimate of an inconclusive window uses",
    )


class ChallengerPointer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    artifact_uri: str = Field(description="model.skops in the model store")
    sha256: str
    metrics: dict[str, float] = Field(default_factory=dict, description="holdout metrics of its PR check")
    commit: str | None = None
    data_hash: str | None = None
    config_hash: str | None = None
    metadata_uri: str | None = Field(None, description="metadata.json next to the artifact")
    production_version: str | None = Field(None, description="the production version it was proposed against")
    mode: Mode = "shadow"
    fraction: float = Field(
        0.1, gt=0, lt=1, description="canary: share of callers answered by the challenger (shadow: unused)"
    )
    sticky_field: str | None = Field(
        None,
        description="canary: request field whose value keeps a caller on one model; None: the request id",
    )
    started_at: str = Field(default_factory=utc_now_text)
    policy: DecisionPolicy = DecisionPolicy()

    def as_pointer(self) -> ProductionPointer:
        """The production pointer this challenger becomes when promoted (and what the loader reads)."""
        return ProductionPointer(
            version=self.version,
            artifact_uri=self.artifact_uri,
            sha256=self.sha256,
            metrics=dict(self.metrics),
            commit=self.commit,
            data_hash=self.data_hash,
            config_hash=self.config_hash,
            metadata_uri=self.metadata_uri,
        )

    def answers(self, sticky_value: object) -> bool:
        """Canary: does the challenger answer the caller whose sticky field holds `sticky_value`?

        A hash of (version, value) mapped to [0, 1): the same caller always gets the same model for
        one challenger, a new challenger draws a fresh set, and the share of callers is `fraction`.
        Always False in shadow mode (production answers every request).
        """
        if self.mode != "canary":
            return False
        digest = hashlib.sha256(f"{self.version}\0{sticky_value}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.fraction


def challenger_path(registry: RegistryConfig) -> Path:
    """`challenger.yaml` beside the configured production pointer."""
    return Path(registry.pointer).parent / CHALLENGER_FILE.name


def read_challenger(path: Path) -> ChallengerPointer | None:
    """The challenger in `path` (a file, or a repository root holding CHALLENGER_FILE); None if none."""
    path = Path(path)
    if path.is_dir():
        path = path / CHALLENGER_FILE
    if not path.exists():
        return None
    return parse_challenger(_read_bytes(path), path)


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ChallengerError(f"{path}: cannot read: {exc}") from exc


def parse_challenger(text: bytes, source: Path) -> ChallengerPointer | None:
    """The one parser of challenger files (the serving app's hot reload hashes `text` to notice changes)."""
    data = load_yaml(text, source, ChallengerError)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ChallengerError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    try:
        return ChallengerPointer.model_validate(data)
    except ValidationError as exc:
        raise ChallengerError(
            f"{source}: invalid challenger pointer: {validation_problems(exc, data)}"
        ) from exc


def validation_problems(exc: ValidationError, data: object = None) -> str:
    """Each problem as `key.path: rule (got value)`."""
    return "; ".join(error_lines(exc, data, with_input=True))


def check_against_production(
    challenger: ChallengerPointer, production: ProductionPointer | None, source: Path
) -> None:
    """ChallengerError unless `challenger` may challenge `production` (before loading anything)."""
    if production is None:
        raise ChallengerError(f"{source}: there is no production model to challenge")
    if challenger.version == production.version:
        raise ChallengerError(
            f"{source}: version: {challenger.version} is the production version; a challenger must be another model"
        )
    if challenger.sha256 == production.sha256:
        raise ChallengerError(
            f"{source}: sha256: {challenger.sha256[:12]} is production's artifact under another version"
        )


def contract_problems(challenger: ArtifactMetadata, production: ArtifactMetadata) -> list[str]:
    """Breaking differences between the two models' inputs and outputs (empty: it may challenge).

    Both answer the same requests and are judged on the same labels, so the challenger must predict
    the same target for the same task with the same classes, and need no input production's callers
    do not send. Using fewer features, another estimator or other hyperparameters is not breaking.
    """
    problems = []
    if challenger.task != production.task:
        problems.append(f"task: {challenger.task!r}, production's is {production.task!r}")
    if challenger.target != production.target:
        problems.append(f"target: {challenger.target!r}, production's is {production.target!r}")
    extra = [f for f in challenger.features if f not in set(production.features)]
    if extra:
        problems.append(f"features production's callers do not send: {', '.join(map(repr, extra[:5]))}")
    if challenger.class_labels is not None and production.class_labels is not None:
        ours, theirs = _label_set(challenger.class_labels), _label_set(production.class_labels)
        if ours != theirs:
            added, lost = sorted(ours - theirs), sorted(theirs - ours)
            problems.append(
                "class labels differ"
                + (f"; only the challenger has {', '.join(added[:5])}" if added else "")
                + (f"; only production has {', '.join(lost[:5])}" if lost else "")
            )
    return problems


def _label_set(labels: list[object]) -> set[str]:
    return {str(v) for v in labels}


def require_compatible(
    challenger: ArtifactMetadata | None, production: ArtifactMetadata | None, source: Path
) -> None:
    """ChallengerError naming every breaking difference; both metadata files are needed to judge."""
    if challenger is None or production is None:
        who = "challenger" if challenger is None else "production"
        raise ChallengerError(
            f"{source}: the {who} artifact has no metadata.json, so its inputs cannot be compared"
        )
    problems = contract_problems(challenger, production)
    if problems:
        raise ChallengerError(
            f"{source}: the challenger's contract differs from production's in a breaking way: "
            + "; ".join(problems)
        )


def load_challenger(
    challenger: ChallengerPointer, production: LoadedModel | None, cache_dir: Path, source: Path
) -> LoadedModel:
    """Fetch and verify the challenger's model (the production loader: sha256 + skops allow-list),
    then refuse it unless it may challenge `production`. ChallengerError on every refusal."""
    if production is None:
        raise ChallengerError(f"{source}: there is no production model to challenge")
    check_against_production(challenger, production.pointer, source)
    try:
        loaded = load_pointed_model(challenger.as_pointer(), cache_dir)
    except ArtifactError as exc:
        raise ChallengerError(f"{source}: challenger artifact refused: {exc}") from exc
    require_compatible(loaded.metadata, production.metadata, source)
    return loaded


def write_challenger(path: Path, challenger: ChallengerPointer) -> None:
    header = (
        "# Challenger model pointer: written by `gitops-ml challenger propose|promote|retire`. "
        "Review changes in PRs.\n"
    )
    atomic_write_text(
        Path(path), header + yaml.safe_dump(challenger.model_dump(mode="json"), sort_keys=False)
    )
