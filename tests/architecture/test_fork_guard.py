"""The fork guard of tests/conftest.py fails a test that reads what a fork replaces, and only that.

Run on a throwaway repository whose tests/conftest.py is a copy of the real one, in a pytest
subprocess (an audit hook cannot be removed, so it must not be added to this process twice).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

BAD = """
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_reads_config():
    (ROOT / "config" / "dataset.yaml").read_text()


def test_reads_a_batch_by_a_relative_path(monkeypatch):
    monkeypatch.chdir(ROOT)
    open("data/batches/b.csv").close()


def test_lists_the_contracts():
    os.listdir(ROOT / "data_contracts")


def test_reads_the_production_pointer():
    (ROOT / "deploy" / "production.yaml").read_bytes()


def test_swallows_the_read():
    try:
        (ROOT / "config" / "dataset.yaml").read_text()
        raise OSError("whatever the code under test catches")
    except OSError:
        pass


def test_runs_gitops_ml_in_the_repository_root():
    # argv as `python -m gitops_ml` has it: the hook sees argv before the program starts
    subprocess.run([sys.executable, "-c", "pass", "-m", "gitops_ml"], cwd=ROOT, check=True)


def test_hands_a_subprocess_the_contract(tmp_path):
    subprocess.run([sys.executable, "-c", "pass", str(ROOT / "data_contracts" / "c.odcs.yaml")], cwd=tmp_path)


@pytest.fixture
def settings():
    return (ROOT / "config" / "dataset.yaml").read_text()


def test_reads_config_in_a_fixture(settings):
    assert settings
"""

GOOD = """
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_reads_a_copy(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "dataset.yaml").write_text("name: x\\n")
    monkeypatch.chdir(tmp_path)
    assert open("config/dataset.yaml").read() == "name: x\\n"


def test_reads_the_rest_of_the_repository():
    assert (ROOT / "docs" / "page.md").read_text()
    assert (ROOT / "deploy" / "README.md").read_text()
    assert (ROOT / "data_notes.md").read_text()


def test_runs_gitops_ml_elsewhere(tmp_path):
    subprocess.run([sys.executable, "-c", "pass", "-m", "gitops_ml"], cwd=tmp_path, check=True)
"""

PROJECT = """
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_project_suite_may_read_config():
    assert (ROOT / "config" / "dataset.yaml").read_text()
"""

AT_IMPORT = """
from pathlib import Path

SETTINGS = (Path(__file__).resolve().parents[1] / "config" / "dataset.yaml").read_text()


def test_never_runs():
    pass
"""


def _repo(root: Path) -> Path:
    files = {
        "pytest.ini": "[pytest]\naddopts = -p no:cacheprovider\n",
        "config/dataset.yaml": "name: bundled\n",
        "data/batches/b.csv": "a\n1\n",
        "data_contracts/c.odcs.yaml": "id: c\n",
        "deploy/production.yaml": "version: v1\n",
        "deploy/README.md": "the pointer lives here\n",
        "docs/page.md": "docs\n",
        "data_notes.md": "beside data/, not in it\n",
        "tests/__init__.py": "",
        "tests/project/__init__.py": "",
        "tests/test_bad.py": BAD,
        "tests/test_good.py": GOOD,
        "tests/test_at_import.py": AT_IMPORT,
        "tests/project/test_setup.py": PROJECT,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    shutil.copy(CONFTEST, root / "tests" / "conftest.py")
    return root


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """{test or module: PASSED / FAILED / ERROR} from one pytest run over the throwaway repository."""
    root = _repo(tmp_path_factory.mktemp("guarded") / "repo")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-q", "--continue-on-collection-errors", "tests"],
        cwd=root,
        env={**os.environ, "COLUMNS": "10000", "GITOPS_ML_FORK_GUARD": "1"},  # whole -r messages
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outcomes: dict[str, str] = {}
    for line in done.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR"):
            outcomes[rest.split(" - ")[0].strip()] = word + " " + rest
    assert outcomes, done.stdout + done.stderr
    return outcomes


@pytest.mark.parametrize(
    ("test", "path"),
    [
        ("test_reads_config", "config/dataset.yaml"),
        ("test_reads_a_batch_by_a_relative_path", "data/batches/b.csv"),
        ("test_lists_the_contracts", "data_contracts"),
        ("test_reads_the_production_pointer", "deploy/production.yaml"),
        ("test_swallows_the_read", "config/dataset.yaml"),
        (
            "test_runs_gitops_ml_in_the_repository_root",
            "subprocess that runs gitops-ml in the repository root",
        ),
        ("test_hands_a_subprocess_the_contract", "subprocess that names data_contracts/c.odcs.yaml"),
    ],
)
def test_a_read_of_what_a_fork_replaces_fails_the_test(outcome: dict[str, str], test: str, path: str):
    result = outcome[f"tests/test_bad.py::{test}"]
    assert result.startswith("FAILED"), result
    assert path in result and "only tests/project may" in result, result


def test_a_read_in_a_fixture_errors_its_setup(outcome: dict[str, str]):
    result = outcome["tests/test_bad.py::test_reads_config_in_a_fixture"]
    assert result.startswith("ERROR") and "(setup)" in result and "config/dataset.yaml" in result, result


def test_a_read_at_import_fails_the_module_collection(outcome: dict[str, str]):
    result = outcome["tests/test_at_import.py"]
    assert result.startswith("ERROR") and "config/dataset.yaml" in result, result


@pytest.mark.parametrize(
    "test",
    [
        "tests/test_good.py::test_reads_a_copy",
        "tests/test_good.py::test_reads_the_rest_of_the_repository",
        "tests/test_good.py::test_runs_gitops_ml_elsewhere",
        "tests/project/test_setup.py::test_the_project_suite_may_read_config",
    ],
)
def test_copies_the_rest_of_the_repository_and_the_project_suite_pass(outcome: dict[str, str], test: str):
    assert outcome[test].startswith("PASSED"), outcome[test]
