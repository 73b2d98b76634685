"""CLI, report files, the pytest plugin, and both install modes (editable and wheel)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from veriformer.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "softmax_attention" in out and "rope.relativity" in out and "caught by" in out


def test_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "veriformer.implementations:torch_sdpa", "--op", "softmax_attention",
                 "--dtype", "bfloat16", "--feature", "causal", "--feature", "gqa"])
    assert code == 0 and "PASSED" in capsys.readouterr().out
    assert main(["check", "veriformer.properties.rope.mutants:kernel_base_ignored", "--op", "rope"]) == 1


def test_report_writes_three_files(tmp_path: Path) -> None:
    from veriformer.report import load_report, to_html, to_markdown

    path = ROOT / "reports" / "cpu" / "conformance.json"

    def no_constants(name: str) -> None:
        raise AssertionError(f"conformance.json is not strict JSON: bare {name}")

    json.loads(path.read_text(), parse_constant=no_constants)  # strict JSON (non-finite figures as strings)
    committed = load_report(path)
    assert committed["passed"]
    md = to_markdown(committed)
    assert "Kill matrix" in md and "torch_sdpa" in md
    page = to_html(committed, md)
    assert page.count("data:image/png;base64,") >= 2 and "<table>" in page


def test_pytest_pyargs_runs_the_catalogue() -> None:
    r = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "veriformer", "-q", "-p", "no:cacheprovider",
                        "-k", "every_law_catches_a_mutant"], capture_output=True, text=True, cwd="/", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout


@pytest.mark.skipif(os.environ.get("VERIFORMER_SKIP_WHEEL") == "1", reason="wheel check disabled")
def test_wheel_installs_all_four_packages(tmp_path: Path) -> None:
    src = tmp_path / "src"  # build from a copy: setuptools leaves build/ in the source tree
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv*", ".git", "build", "reports", "*.egg-info",
                                                             "__pycache__", ".hypothesis"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist")], check=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("veriformer-*.whl"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, timeout=600)
    code = ("import veriformer, veriformer.reference, veriformer.fast, veriformer.properties, sys;"
            "assert all(m.__file__.startswith(sys.argv[1]) for m in (veriformer, veriformer.reference,"
            " veriformer.fast, veriformer.properties)), veriformer.reference.__file__;"
            "print(len(veriformer.LAWS))")
    r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(target)}, timeout=600)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) >= 20


def test_readme_law_example_runs_and_its_mutant_is_caught() -> None:
    import veriformer
    from veriformer.registry import LAWS, MUTANTS

    src = (ROOT / "README.md").read_text().split("## Adding a law")[1].split("```python")[1].split("```")[0]
    try:
        exec(src, {})
        assert veriformer.run_law("rope.double_rotation").passed
        assert veriformer.run_mutant("rope.one_based_positions").killed
    finally:
        LAWS.pop("rope.double_rotation", None)
        MUTANTS.pop("rope.one_based_positions", None)


def test_report_end_to_end_on_a_small_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from veriformer import report
    from veriformer.implementations import IMPLEMENTATIONS
    from veriformer.registry import LAWS, MUTANTS

    monkeypatch.setattr(report, "LAWS", {k: v for k, v in LAWS.items() if k == "rope.composition"})
    monkeypatch.setattr(report, "MUTANTS", {k: v for k, v in MUTANTS.items() if k == "rope.table_wraps_at_4096"})
    monkeypatch.setattr(report, "IMPLEMENTATIONS", [i for i in IMPLEMENTATIONS if i.name == "careful_torch[half]"])
    assert main(["report", "--out", str(tmp_path)]) == 0
    rep = json.loads((tmp_path / "conformance.json").read_text())
    assert rep["passed"] and rep["environment"]["seed"] == 0 and rep["length_sweep"]
    assert rep["kill_matrix"]["rows"][0]["cells"]["rope.composition"] is True
    assert "data:image/png;base64," in (tmp_path / "conformance.html").read_text()
    assert "## Kill matrix" in (tmp_path / "conformance.md").read_text()
