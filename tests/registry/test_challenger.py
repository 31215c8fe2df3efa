"""deploy/challenger.yaml: the model, its parser and every refusal (production keeps serving)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_ml.config import RegistryConfig, model_store_url
from gitops_ml.registry.challenger import (
    CHALLENGER_FILE,
    ChallengerError,
    ChallengerPointer,
    challenger_path,
    load_challenger,
    read_challenger,
    write_challenger,
)
from gitops_ml.registry.model_store import open_store
from gitops_ml.registry.pointer import read_pointer
from gitops_ml.registry.production import load_production
from gitops_ml.registry.promote import promote_candidate
from tests.fixtures.models import train_candidate


def _train(
    root: Path,
    name: str,
    *,
    features: tuple[str, ...] = ("a", "b"),
    labels: tuple[object, object] = (0, 1),
    seed: int = 0,
    target: str = "y",
) -> Path:
    return train_candidate(
        root / name,
        features=features,
        labels=labels,
        seed=seed,
        target=target,
        git_commit=name * 8,
        numeric_features=features,
    )


def _publish(candidate: Path, registry: RegistryConfig, **fields: object) -> ChallengerPointer:
    from gitops_ml.registry.artifacts import read_metadata

    meta = read_metadata(candidate)
    uri = open_store(model_store_url(registry)).publish(candidate, meta.version, meta.sha256)
    return ChallengerPointer(version=meta.version, artifact_uri=uri, sha256=meta.sha256, **fields)


@pytest.fixture
def production(tmp_path: Path, registry: RegistryConfig):
    promote_candidate(_train(tmp_path, "prod", seed=1), registry)
    return load_production(registry, tmp_path / "cache")


def test_round_trip_and_defaults(tmp_path: Path, registry: RegistryConfig) -> None:
    challenger = ChallengerPointer(
        version="v-2", artifact_uri="store/v-2/model.skops", sha256="a" * 64, mode="canary", fraction=0.25
    )
    path = challenger_path(registry)
    assert path == tmp_path / "deploy" / "challenger.yaml"
    write_challenger(path, challenger)
    assert read_challenger(path) == challenger
    assert read_challenger(tmp_path) == challenger, "a repository root reads CHALLENGER_FILE"
    assert Path("deploy/challenger.yaml") == CHALLENGER_FILE
    assert challenger.policy.consecutive_windows == 3
    assert challenger.as_pointer().version == "v-2"


def test_no_file_is_no_challenger(tmp_path: Path) -> None:
    assert read_challenger(tmp_path / "deploy" / "challenger.yaml") is None


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_canary_fraction_outside_the_open_interval_is_refused(tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "challenger.yaml"
    path.write_text(
        yaml.safe_dump(
            {"version": "v", "artifact_uri": "x", "sha256": "a" * 64, "mode": "canary", "fraction": fraction}
        )
    )
    with pytest.raises(ChallengerError) as err:
        read_challenger(path)
    assert str(path) in str(err.value) and "fraction" in str(err.value) and str(fraction) in str(err.value)


def test_unknown_key_and_bad_mode_name_their_key_paths(tmp_path: Path) -> None:
    path = tmp_path / "challenger.yaml"
    path.write_text(
        yaml.safe_dump(
            {"version": "v", "artifact_uri": "x", "sha256": "s", "mode": "mirror", "policy": {"windows": 2}}
        )
    )
    with pytest.raises(ChallengerError) as err:
        read_challenger(path)
    message = str(err.value)
    assert "mode:" in message and "'mirror'" in message
    assert "policy.windows:" in message


def test_not_yaml_and_not_a_mapping_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "challenger.yaml"
    path.write_text("version: [unclosed\n")
    with pytest.raises(ChallengerError, match="not valid YAML"):
        read_challenger(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ChallengerError, match="expected a mapping"):
        read_challenger(path)


def test_a_valid_challenger_loads_through_the_production_loader(tmp_path, registry, production) -> None:
    challenger = _publish(_train(tmp_path, "chal", seed=2), registry)
    loaded = load_challenger(challenger, production, tmp_path / "cache", challenger_path(registry))
    assert loaded.version == challenger.version != production.version
    assert loaded.metadata is not None and loaded.metadata.sha256 == challenger.sha256


def test_wrong_sha256_is_refused(tmp_path, registry, production) -> None:
    challenger = _publish(_train(tmp_path, "chal", seed=2), registry)
    wrong = challenger.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(ChallengerError) as err:
        load_challenger(wrong, production, tmp_path / "cache", challenger_path(registry))
    assert "sha256 mismatch" in str(err.value) and "challenger.yaml" in str(err.value)


def test_tampered_artifact_is_refused(tmp_path, registry, production) -> None:
    challenger = _publish(_train(tmp_path, "chal", seed=2), registry)
    stored = Path(challenger.artifact_uri)
    stored.write_bytes(stored.read_bytes() + b"tampered")
    with pytest.raises(ChallengerError, match="sha256 mismatch"):
        load_challenger(challenger, production, tmp_path / "cache", challenger_path(registry))


def test_the_production_version_is_refused(tmp_path, registry, production) -> None:
    pointer = read_pointer(registry.pointer)
    assert pointer is not None
    same = ChallengerPointer(
        version=pointer.version, artifact_uri=pointer.artifact_uri, sha256=pointer.sha256
    )
    with pytest.raises(ChallengerError, match="is the production version"):
        load_challenger(same, production, tmp_path / "cache", challenger_path(registry))


def test_no_production_is_refused(tmp_path, registry) -> None:
    challenger = _publish(_train(tmp_path, "chal", seed=2), registry)
    with pytest.raises(ChallengerError, match="no production model to challenge"):
        load_challenger(challenger, None, tmp_path / "cache", challenger_path(registry))


def test_a_feature_production_callers_do_not_send_is_a_breaking_difference(
    tmp_path, registry, production
) -> None:
    challenger = _publish(_train(tmp_path, "chal", features=("a", "b", "c"), seed=2), registry)
    with pytest.raises(ChallengerError) as err:
        load_challenger(challenger, production, tmp_path / "cache", challenger_path(registry))
    assert "breaking" in str(err.value) and "'c'" in str(err.value)


def test_other_classes_or_target_are_breaking_fewer_features_are_not(tmp_path, registry, production) -> None:
    cache = tmp_path / "cache"
    source = challenger_path(registry)
    labels = _publish(_train(tmp_path, "lab", labels=("no", "yes"), seed=3), registry)
    with pytest.raises(ChallengerError, match="class labels differ"):
        load_challenger(labels, production, cache, source)
    target = _publish(_train(tmp_path, "tgt", target="z", seed=4), registry)
    with pytest.raises(ChallengerError, match="target: 'z'"):
        load_challenger(target, production, cache, source)
    fewer = _publish(_train(tmp_path, "few", features=("a",), seed=5), registry)
    assert load_challenger(fewer, production, cache, source).version == fewer.version


def test_canary_assignment_is_sticky_and_near_the_fraction() -> None:
    challenger = ChallengerPointer(version="v-9", artifact_uri="x", sha256="s", mode="canary", fraction=0.2)
    callers = [f"customer-{i}" for i in range(5000)]
    first = [challenger.answers(c) for c in callers]
    assert first == [challenger.answers(c) for c in callers], "the same caller must get the same model"
    assert 0.17 < sum(first) / len(first) < 0.23
    shadow = challenger.model_copy(update={"mode": "shadow"})
    assert not any(shadow.answers(c) for c in callers), "in shadow mode production answers everyone"
