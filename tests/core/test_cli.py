"""The command line as a kernel engineer uses it (issue 11): the current folder importable, arguments validated up
front with one line naming the bad value and the valid ones, exit codes 0/1/2/3, --version, --json with the
figures of the Python API, --max-examples, --seed, --case replay, --out for one check's HTML, progress on stderr,
--device cuda refused at once, report's default folder not the committed one, list --op NAME.

Most tests call ``main()`` in this process (fast); a few run the installed console script to prove the process
exit codes and the import from the current folder."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

import veriformer
from veriformer import cli
from veriformer.cli import main

ORACLE = "veriformer.properties.rope.implementations:oracle_rope"
FAST = ["--op", "rope", "--max-examples", "2", "--quiet"]

_FAILING = '''
def bad_rope(x, positions, *, base):
    """Off by 1 %: fails every case."""
    return x * 1.01


def nan_rope(x, positions, *, base):
    """All NaN."""
    return x * float("nan")


NOT_CALLABLE = 3
'''


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder holding ``userkernels.py`` (a module name unique to this test), as the cwd; the
    import path and module table are restored afterwards."""
    (tmp_path / "userkernels.py").write_text(_FAILING)
    (tmp_path / "userpass.py").write_text("from veriformer.implementations import oracle_rope as fn  # noqa: F401\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("userkernels", "userpass"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def _console() -> list[str]:
    """The installed ``veriformer`` script, else ``python -P -m veriformer.cli`` (-P: the current folder is not
    put on sys.path, as with the script)."""
    script = Path(sys.executable).parent / "veriformer"
    return [str(script)] if script.exists() else [sys.executable, "-P", "-m", "veriformer.cli"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([*_console(), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


# --- the process: import from the current folder, exit codes ------------------------------------------------


def test_current_folder_importable_and_exit_codes_of_the_process(tmp_path: Path) -> None:
    """``veriformer check mymod:fn`` from the folder holding mymod.py, without PYTHONPATH (before: a
    ModuleNotFoundError traceback, exit 1); a passing target exits 0, a failing one 1 (usage errors: below)."""
    (tmp_path / "userkernels.py").write_text(_FAILING)
    (tmp_path / "userpass.py").write_text("from veriformer.implementations import oracle_rope as fn  # noqa: F401\n")
    ok = _run(["check", "userpass:fn", *FAST], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "PASSED" in ok.stdout
    bad = _run(["check", "userkernels:bad_rope", *FAST], tmp_path)
    assert bad.returncode == 1, bad.stderr
    assert "FAILED" in bad.stdout and "Traceback" not in bad.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"veriformer {veriformer.__version__}"


@pytest.mark.parametrize("cmd", [[], ["check"], ["report"], ["list"]])
def test_help_documents_the_exit_codes(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cmd, "--help"]) == 0
    out = capsys.readouterr().out
    for line in ("0  passed", "1  a check failed", "2  usage error", "3  internal error"):
        assert line in out


def test_readme_documents_the_exit_codes() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    shell = readme.split("From a shell:")[1].split("###")[0]
    for code, meaning in ((0, "passed"), (1, "failed"), (2, "usage error"), (3, "internal error")):
        assert f"| {code} " in shell and meaning in shell, (code, meaning)


# --- usage errors: one line naming the bad value and the valid ones, exit 2 -----------------------------------

_USAGE = [
    (["check", ORACLE, "--op", "rope", "--dtype", "fp17"],
     "argument --dtype: 'fp17' is not one of bfloat16, float16, float32, float64"),
    (["check", ORACLE, "--op", "rop"], "argument --op: 'rop' is not one of "),
    (["check", ORACLE, "--op", "rop"], "did you mean 'rope'?"),
    (["check", "veriformer.implementations:torch_sdpa", "--op", "softmax_attention", "--feature", "casual"],
     "argument --feature: 'casual' is not one of causal, gqa, "),
    (["check", "veriformer.implementations:torch_sdpa", "--op", "softmax_attention", "--feature", "casual"],
     "; did you mean 'causal'?"),
    (["check", ORACLE, "--op", "rope", "--feature", "causal"], "argument --feature: 'causal' is not one of"),
    (["check", "nosuchmodule_xyz:fn", "--op", "rope"], "argument target: cannot import module 'nosuchmodule_xyz'"),
    (["check", "veriformer.implementations", "--op", "rope"], "must be MODULE:FUNCTION"),
    (["check", "veriformer.properties.rope.implementations:oracle_ropx", "--op", "rope"],
     "did you mean 'oracle_rope'?"),
    (["check", "userkernels:NOT_CALLABLE", "--op", "rope"], "is a int, not a callable"),
    (["check", ORACLE, "--op", "rope", "--max-examples", "0"], "argument --max-examples: '0' must be at least 1"),
    (["check", ORACLE, "--op", "rope", "--seed", "x"], "argument --seed: 'x' is not an integer"),
    (["check", ORACLE, "--op", "rope", "--layout", "diagonal"], "argument --layout: 'diagonal' is not one of half"),
    (["check", "veriformer.implementations:torch_sdpa", "--op", "softmax_attention", "--layout", "half"],
     "op 'softmax_attention' has no option 'layout'"),
    (["check", ORACLE, "--op", "rope", "--device", "tpu"], "argument --device: 'tpu' is not one of cpu, cuda"),
    (["check", ORACLE, "--op", "rope", "--case", "__import__('os').system('true')"],
     "is not a constructor call like RopeCase(B=1, ...); case classes: AttentionCase, "),
    (["check", ORACLE, "--op", "rope", "--case", "RopeCase(B=1, H=1, T=2, D=4, seed=len('x'))"],
     "argument --case: \"len('x')\" is not a literal"),
    (["check", ORACLE, "--op", "rope", "--case", "AttentionCase(B=1, H=1, Hkv=1, T=2, S=2, D=2, Dv=2)"],
     "argument --case: op 'rope' takes RopeCase cases, not AttentionCase"),
    (["list", "--op", "rop"], "argument --op: 'rop' is not one of"),
    (["report", "--device", "tpu"], "argument --device: 'tpu' is not one of cpu, cuda"),
]


@pytest.mark.parametrize(("args", "message"), _USAGE, ids=[" ".join(a[2:] if a[0] == "check" else a)[:60]
                                                           for a, _ in _USAGE])
def test_usage_error_is_one_line_exit_2(args: list[str], message: str, user_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Before: raw tracebacks and exit 1 (the code of a failing kernel), or a run that started anyway."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("veriformer: error: ") and err.count("\n") == 1, err
    assert message in err, err


def test_check_argument_errors_of_check_itself_are_usage_errors(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """check() validates its own arguments (ValueError/TypeError): the CLI reports them as usage errors."""
    def refuse(*a: object, **k: object) -> None:
        raise ValueError("check: argument 'rho' must be positive; got -1.0\nmore detail")

    monkeypatch.setattr(veriformer, "check", refuse)
    assert main(["check", ORACLE, *FAST]) == 2
    assert capsys.readouterr().err == "veriformer: error: check: argument 'rho' must be positive; got -1.0\n"


def test_internal_error_exit_3_one_line_unless_traceback(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    def crash(*a: object, **k: object) -> None:
        raise RuntimeError("the oracle fell over")

    monkeypatch.setattr(veriformer, "check", crash)
    assert main(["check", ORACLE, *FAST]) == 3
    err = capsys.readouterr().err
    assert err == ("veriformer: internal error: RuntimeError: the oracle fell over "
                   "(run with --traceback for details)\n")
    assert main(["check", ORACLE, *FAST, "--traceback"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "the oracle fell over" in err


# --- --device cuda without a GPU: refused before anything runs ----------------------------------------------


@pytest.mark.parametrize("cmd", [["check", ORACLE, "--op", "rope", "--device", "cuda"],
                                 ["report", "--device", "cuda"], ["report", "--device", "cuda:0"]])
def test_device_cuda_without_gpu_fails_at_once(cmd: list[str], monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Before: check printed a traceback (exit 1); report ran 16 s before crashing."""
    import torch

    from veriformer import report

    def must_not_run(*a: object, **k: object) -> None:
        raise AssertionError("started running")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(veriformer, "check", must_not_run)
    monkeypatch.setattr(report, "write_report", must_not_run)
    t0 = time.perf_counter()
    assert main(cmd) == 2
    assert time.perf_counter() - t0 < 2.0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch.cuda.is_available() is False" in err and "--device cpu" in err


# --- results: exit 0/1, --json, --max-examples, --seed, dtype aliases, progress --------------------------------


def _json_run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object], str]:
    code = main([*args, "--json"])
    cap = capsys.readouterr()

    def strict(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return code, json.loads(cap.out, parse_constant=strict), cap.err


def test_json_has_the_figures_of_the_python_api(capsys: pytest.CaptureFixture[str]) -> None:
    """Two dtypes, run one at a time for the progress lines, give check(dtypes=both)'s figures exactly."""
    from veriformer.implementations import oracle_rope

    code, got, err = _json_run(["check", ORACLE, "--op", "rope", "--max-examples", "3", "--dtype", "fp32",
                                "--dtype", "float64", "--seed", "5"], capsys)
    api = veriformer.check(oracle_rope, op="rope", dtypes=("float32", "float64"), max_examples=3, seed=5)
    assert code == 0 and api.passed
    assert got == cli.jsonable(api.as_dict())
    assert got["dtypes"] == ["float32", "float64"]
    per = {dt: sum(c["dtype"] == dt for c in got["cases"]) for dt in ("float32", "float64")}  # type: ignore[attr-defined]
    assert f"[1/2] float32: {per['float32']} cases, passed" in err
    assert f"[2/2] float64: {per['float64']} cases, passed" in err


def test_quiet_has_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", ORACLE, *FAST]) == 0
    assert capsys.readouterr().err == ""


def test_json_of_a_nan_kernel_is_strict_json(user_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """NaN/inf figures come out as strings, so any JSON reader takes the output (json.dumps would print NaN)."""
    code, got, _ = _json_run(["check", "userkernels:nan_rope", *FAST], capsys)
    assert code == 1 and got["passed"] is False
    assert "nan" in json.dumps(got) or "inf" in json.dumps(got)


def test_max_examples_and_seed(capsys: pytest.CaptureFixture[str]) -> None:
    """--max-examples N draws N cases (check() may add its fixed coverage cases on top); --seed picks them."""
    runs: dict[tuple[str, str], list[list[object]]] = {}
    for n, seed in (("4", "1"), ("4", "1"), ("4", "2"), ("2", "1")):
        code, got, _ = _json_run(["check", ORACLE, "--op", "rope", "--quiet", "--max-examples", n,
                                  "--seed", seed], capsys)
        assert code == 0
        runs.setdefault((n, seed), []).append([c["case"] for c in got["cases"]])  # type: ignore[attr-defined]
    assert runs["4", "1"][0] == runs["4", "1"][1] and runs["4", "1"][0] != runs["4", "2"][0]
    assert len(runs["4", "1"][0]) - len(runs["2", "1"][0]) == 2


# --- failures: exit 1, the replay line, --case, --out --------------------------------------------------------


def test_failure_prints_a_shell_replay_line_that_replays(user_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "userkernels:bad_rope", *FAST]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("replay from a shell (float32): "))
    argv = shlex.split(line.split(": ", 1)[1])
    assert argv[:3] == ["veriformer", "check", "userkernels:bad_rope"] and "--case" in argv
    code, got, _ = _json_run([*argv[1:], "--quiet"], capsys)
    assert code == 1 and len(got["cases"]) == 1  # type: ignore[arg-type]
    replayed = cli.parse_case(argv[argv.index("--case") + 1])
    printed = json.dumps(got["cases"][0]["case"])  # type: ignore[index]
    assert type(replayed).__name__ in printed
    assert f"seed={replayed.seed}" in printed or f'"seed": {replayed.seed}' in printed


def test_case_replays_the_printed_case_on_a_correct_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    case = "RopeCase(B=1, H=2, T=5, D=8, positions='offset', offset=70000, base=500000.0, amp=3.0, seed=11)"
    code, got, _ = _json_run(["check", ORACLE, "--op", "rope", "--quiet", "--case", case], capsys)
    assert code == 0 and len(got["cases"]) == 1  # type: ignore[arg-type]
    assert "70000" in json.dumps(got["cases"][0]["case"])  # type: ignore[index]


def test_parse_case_accepts_printed_forms() -> None:
    from veriformer.properties.attention.strategies import AttentionCase

    c = cli.parse_case("case=AttentionCase(B=1, H=2, Hkv=1, T=3, S=4, D=8, Dv=8, window=None, amp=-1e4, "
                       "scale=np.float64(0.5), seed=7)")
    assert isinstance(c, AttentionCase) and c.amp == -1e4 and c.scale == 0.5 and c.window is None
    assert {"AttentionCase", "RopeCase", "ScanCase", "SSDCase", "LinearAttentionCase"} <= set(cli.case_classes())


def test_out_writes_one_html_page(user_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = user_dir / "out" / "bad.html"
    assert main(["check", "userkernels:bad_rope", *FAST, "--out", str(page)]) == 1
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "FAILED" in text and "<table>" in text
    assert "replay" in text and "RopeCase(" in text and "veriformer " + veriformer.__version__ in text
    capsys.readouterr()
    assert main(["check", ORACLE, *FAST, "--out", str(user_dir)]) == 2  # a folder, not a file


# --- report and list -------------------------------------------------------------------------------------------


def test_report_default_folder_is_not_the_committed_one(user_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Before: ``veriformer report`` overwrote reports/cpu/.  Now ./veriformer-report unless --out says."""
    from veriformer import report

    seen: list[tuple[Path, dict[str, object]]] = []

    def fake(out: Path, **kw: object) -> dict[str, object]:
        seen.append((Path(out), kw))
        return {"passed": False, "seconds": 0.0}

    monkeypatch.setattr(report, "write_report", fake)
    assert main(["report"]) == 1  # a failed report exits 1
    assert main(["report", "--out", "reports/cpu", "--quiet"]) == 1
    assert seen[0][0].resolve() == user_dir / "veriformer-report"
    assert seen[0][1] == {"device": "cpu", "profile": "ci", "seed": 0, "progress": True}
    assert seen[1][0] == Path("reports/cpu") and seen[1][1]["progress"] is False
    assert "veriformer-report/conformance.json" in capsys.readouterr().out


@pytest.mark.parametrize(("op", "expected"), [
    ("rope", ["convention:", "x [B,H,T,D]", "layout='half'", "rotary_dim=None", "op.rope: rho=2, floor_ulps=2",
              "One rotation per pair", "cases:       RopeCase"]),
    ("selective_scan", ["wide outputs: last_state", "float32 for float16/bfloat16", "outputs:     out, last_state",
                        "complex_A", "op.selective_scan.grad", "ScanCase"]),
    ("linear_attention", ["wide outputs: final_state", "gate, initial_state", "LinearAttentionCase"]),
])
def test_list_op_prints_the_full_convention(op: str, expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--op", op]) == 0
    out = capsys.readouterr().out
    for text in expected:
        assert text in out, text
