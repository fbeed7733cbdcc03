import json
import os
import subprocess
import sys

import pytest

from swincli.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_does_not_import_torch():
    code = "import sys; from swincli.cli import main; rc = main(['--help']); print('TORCH', 'torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "TORCH False" in proc.stdout
    assert "models" in proc.stdout and "env" in proc.stdout and "Examples" in proc.stdout


def test_shell_completion_completes_commands_and_options(capsys):
    env = {**os.environ, "_SWIN_COMPLETE": "complete_bash", "COMP_WORDS": "swin pre", "COMP_CWORD": "1"}
    swin = [sys.executable, "-m", "swincli"]
    proc = subprocess.run(swin, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["predict"]
    env.update(COMP_WORDS="swin predict --top", COMP_CWORD="2")
    proc = subprocess.run(swin, env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["--top-k"]
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "--install-completion" in out


def test_python_m_and_version():
    proc = subprocess.run([sys.executable, "-m", "swincli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("swin ")


@pytest.mark.parametrize(
    "args", [["models", "list", "--help"], ["models", "info", "--help"], ["env", "--help"], ["convert", "--help"]]
)
def test_every_command_help_shows_examples(capsys, args):
    code, out, _ = run(capsys, *args)
    assert code == 0 and "Examples" in out and "$ swin" in out


def test_models_info_reports_paper_figures(capsys):
    code, out, _ = run(capsys, "models", "info", "swin-t")
    assert code == 0
    assert "28.29M params" in out and "4.5 GMACs" in out
    code, out, _ = run(capsys, "models", "info", "swin-b", "--size", "384", "--window", "12")
    assert code == 0 and "47.1 GMACs" in out


def test_models_info_json(capsys):
    code, out, _ = run(capsys, "models", "info", "swinv2-l", "--json")
    data = json.loads(out)
    assert code == 0 and data["params"] == 196_739_932
    assert [s["window"][0] for s in data["stages"]] == [16, 16, 16, 8]
    assert [s["pretrained_window"][0] for s in data["stages"]] == [12, 12, 12, 6]
    assert data["weights"][0]["name"] == "swinv2_large_window12to16_192to256.ms_in22k_ft_in1k"


def test_models_list_filters(capsys):
    code, out, _ = run(capsys, "models", "list", "swinv2*", "--pretrained", "--json")
    rows = json.loads(out)
    assert code == 0 and rows and all(r["name"].startswith("swinv2") and r["weights"] for r in rows)
    code, out, _ = run(capsys, "models", "list", "--v1")
    assert code == 0 and "swin_tiny_patch4_window7_224" in out and "swinv2" not in out


def test_env_report(capsys):
    code, out, _ = run(capsys, "env", "--json")
    data = json.loads(out)
    assert code == 0 and data["packages"]["torch"] != "not installed"
    assert {"cuda_available", "cpu_bf16", "sdpa", "onednn_fused_linear", "plugins"} <= set(data)
    assert {p["name"] for p in data["plugins"] if p["builtin"]} >= {"models", "env"}
    code, out, _ = run(capsys, "env")
    assert code == 0 and "- swincli:" in out


def test_user_errors_are_one_line(capsys):
    code, out, err = run(capsys, "models", "info", "swin-tt")
    assert code == 1 and err.strip().count("\n") == 0
    assert "unknown model 'swin-tt'" in err and "did you mean" in err and "Traceback" not in err
    code, _, err = run(capsys, "models", "info", "swin-t", "--size", "16")
    assert code == 1 and "too small" in err and "hint:" in err


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "models", "info", "swin-t", "--size", "big")[0] == 2
    assert run(capsys, "models", "nope")[0] == 2
    assert run(capsys, "models", "info", "swin-t", "--bogus-flag")[0] == 2


def test_debug_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.setenv("SWIN_DEBUG", "1")
    code, _, err = run(capsys, "models", "info", "swin-tt")
    assert code == 1 and "Traceback" in err and "UnknownModelError" in err


def test_console_script_is_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "swin")
    proc = subprocess.run([exe, "models", "info", "swin-t", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)["macs"] == 4_494_405_120
