"""swin train / finetune / eval on tiny models and generated data (CPU, a few steps each)."""

import json
import math
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import TINY, make_folder, run_cli, save_tiny
from swincli import load_model
from swincli.engine.recipes.auto import LAYER_DECAY, LR_FINETUNE

def tensors(path):
    model = load_model(path)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_writes_a_complete_run_directory(colours, tmp_path, capsys):
    out = tmp_path / "run"
    code, printed, _ = run_cli(capsys, "train", "--data", str(colours), "--epochs", "2", "-o", str(out), *TINY[:-1])
    assert code == 0, printed
    assert f"results saved to {out}" in printed.splitlines()[-1]
    for name in ("args.json", "metrics.jsonl", "last.safetensors", "best.safetensors", "resume.safetensors", "curves.png"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("train_loss", "val_loss", "val_acc1", "val_acc5", "lr", "epoch_time_s", "images_per_s"):
        assert isinstance(rows[-1][key], float), key
    assert 0 <= rows[-1]["val_acc1"] <= 100
    args = json.loads((out / "args.json").read_text())
    assert args["recipe"] == "auto" and args["smoothing"] == 0.1 and args["mixup"] == 0.0  # 9 images: small data
    model = load_model(out / "best.safetensors")
    assert model.class_names == ["blue", "green", "red"] and model.preprocessing.input_size == (32, 32)
    assert model.provenance["training"]["args"]["epochs"] == 2


def test_run_directories_are_numbered(colours, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert run_cli(capsys, "train", "--data", str(colours), "--epochs", "1", "--max-steps", "1", *TINY)[0] == 0
    assert sorted(p.name for p in (tmp_path / "runs" / "train").iterdir()) == ["exp", "exp2"]


def test_finetune_changes_size_window_and_classes(colours, tmp_path, capsys):
    ck = save_tiny(tmp_path / "pre.safetensors", num_classes=5, version=2)
    out = tmp_path / "ft"
    code, printed, _ = run_cli(capsys, "finetune", "--checkpoint", str(ck), "--data", str(colours), "--size", "64",
                               "--window", "4", "--epochs", "1", "-o", str(out), "--workers", "0", "-b", "4")  # fmt: skip
    assert code == 0, printed
    assert "resized 32x32 (windows 2,2,2,1) -> 64x64 (windows 4,4,4,2)" in printed
    assert "head 5 -> 3 classes" in printed
    model = load_model(out / "best.safetensors")
    assert model.config.num_classes == 3 and model.config.image_hw == (64, 64)
    assert [st.pretrained_window[0] for st in model.config.layout()] == [2, 2, 2, 1]
    args = json.loads((out / "args.json").read_text())
    assert args["recipe"] == "auto" and args["weight_decay"] == 0.05 and args["drop_path"] == 0.1  # auto, fine-tuning


def test_eval_reports_json_and_per_class(colours, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "--data", str(colours), "--epochs", "1", "-o", str(out), *TINY)[0] == 0
    code, printed, _ = run_cli(capsys, "eval", "--checkpoint", str(out / "best.safetensors"), "--data", str(colours),
                               "--format", "json", "--workers", "0")  # fmt: skip
    data = json.loads(printed)
    assert code == 0 and set(data) == {"acc1", "acc5", "loss", "images", "unreadable_images"} and data["images"] == 12
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert data["acc1"] == pytest.approx(rows[-1]["val_acc1"])
    code, printed, _ = run_cli(capsys, "eval", "-c", str(out / "best.safetensors"), "-d", str(colours), "--per-class",
                               "--workers", "0")  # fmt: skip
    assert code == 0 and "Per class" in printed and "green" in printed


def test_config_file_values_are_defaults_and_flags_win(colours, tmp_path, capsys):
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text("# my recipe\nepochs: 3\nlr: 0.002\nmixup: 0.0\naa: none\nbatch-size: 4\n")
    out = tmp_path / "run"
    code, _, _ = run_cli(capsys, "train", "--data", str(colours), "--config", str(cfg), "--epochs", "1", "--max-steps", "1",
                         "-o", str(out), "--size", "32", "--window", "2", "--workers", "0", "--quiet")  # fmt: skip
    args = json.loads((out / "args.json").read_text())
    assert code == 0 and args["epochs"] == 1 and args["lr"] == 0.002 and args["mixup"] == 0.0 and args["batch_size"] == 4


def test_a_flag_beats_the_config_file_even_at_its_default(colours, tmp_path, capsys):
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text("seed: 3\nsmoothing: 0.2\n")
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", str(colours), "--seed", "0", "--config", str(cfg), "--epochs", "1",
                           "--max-steps", "1", "-o", str(out), *TINY)  # fmt: skip
    args = json.loads((out / "args.json").read_text())
    assert code == 0, err
    assert args["seed"] == 0 and args["smoothing"] == 0.2 and "quiet" not in args and "num_classes" not in args
    cfg.write_text("seed: 3\nsede: 4\n")
    code, _, err = run_cli(capsys, "train", "--config", str(cfg), *TINY)
    assert code == 2 and "unknown option 'sede'" in err and err.strip().count("\n") == 0


def test_warmup_lr_flag_is_taken_as_given(colours, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", str(colours), "--warmup-lr", "5e-7", "--epochs", "1",
                           "--max-steps", "1", "-o", str(out), "--recipe", "official", *TINY)  # fmt: skip
    args = json.loads((out / "args.json").read_text())
    assert code == 0, err
    assert args["warmup_lr"] == 5e-7  # the official recipe's value, but given: not scaled by batch/512
    assert args["lr"] == pytest.approx(5e-4 * 4 / 512) and args["min_lr"] == pytest.approx(5e-6 * 4 / 512)


def test_short_c_is_the_checkpoint(colours, tiny_checkpoint, tmp_path, capsys):
    ck = tiny_checkpoint
    out = tmp_path / "ft"
    code, _, err = run_cli(capsys, "finetune", "-c", str(ck), "--data", str(colours), "--epochs", "1", "--max-steps", "1",
                           "-o", str(out), *TINY)  # fmt: skip
    assert code == 0, err
    args = json.loads((out / "args.json").read_text())
    assert args["checkpoint"] == str(ck) and args["recipe"] == "auto"
    assert args["lr"] == pytest.approx(LR_FINETUNE * math.sqrt(4 / 8)) and args["layer_decay"] == LAYER_DECAY  # -b 4
    code, _, err = run_cli(capsys, "train", "-c", str(ck), *TINY)
    assert code == 2 and "swin finetune" in err and err.strip().count("\n") == 0 and "Traceback" not in err


@pytest.mark.parametrize(
    "command, own, other",
    [("train", ["Train a Swin model from scratch", "$ swin train --config recipe.yaml"], "Fine-tune"),
     ("finetune", ["Fine-tune pretrained weights", "$ swin finetune -c swinv2-b-192"], "from scratch")],
)  # fmt: skip
def test_train_and_finetune_have_their_own_help(capsys, monkeypatch, command, own, other):
    monkeypatch.setenv("COLUMNS", "200")
    code, printed, _ = run_cli(capsys, command, "--help")
    assert code == 0 and all(text in printed for text in own) and other not in printed
    assert re.search(r"--checkpoint +-c", printed) and "--warmup-lr" in printed


def test_corrupt_images_are_skipped_and_empty_data_refused(tmp_path, capsys):
    data = make_folder(tmp_path / "d", per_class=4)
    (data / "train" / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (data / "train" / "red" / "empty.jpg").write_bytes(b"")
    (data / "train" / "green" / "notes.png").write_text("not an image")
    code, _, err = run_cli(capsys, "train", "--data", str(data), "--epochs", "1", "--max-steps", "1", "-o",
                           str(tmp_path / "r"), *TINY)  # fmt: skip
    assert code == 0 and "skipped 3 images that cannot be read in" in err
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    code, _, err = run_cli(capsys, "train", "--data", str(tmp_path / "empty"), *TINY)
    assert code == 1 and "no readable images" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "train", "--data", str(tmp_path / "nowhere"), *TINY)
    assert code == 1 and "no such data folder" in err


def test_nan_guard_stops_a_diverged_run(tmp_path, capsys, monkeypatch):
    import swincli.engine.trainer as trainer

    # a diverged loss (--lr is capped at 10, which no longer reliably diverges): NaN, still on the graph
    monkeypatch.setattr(trainer.F, "cross_entropy", lambda logits, y, **kw: logits.float().sum() * float("nan"))
    data = make_folder(tmp_path / "d", per_class=12, split=False)
    code, _, err = run_cli(capsys, "train", "--data", str(data), "--epochs", "1", "--clip-grad", "0",
                           "-o", str(tmp_path / "r"), "--size", "32", "--window", "2", "--workers", "0", "-b", "1",
                           "--mixup", "0", "--cutmix", "0", "--quiet")  # fmt: skip
    assert code == 1 and "non-finite losses in a row" in err and "step skipped" in err


# ------------------------------------------------------------------ exact resume
def _train_proc(data, out, *extra):
    args = [sys.executable, "-m", "swincli", "train", "--data", str(data), "--epochs", "2", "-o", str(out),
            "--size", "32", "--window", "2", "-b", "4", "--seed", "3", "--drop-path", "0.1", "--quiet", *extra]  # fmt: skip
    return args


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("workers", ["0", "2"])
def test_resume_after_sigkill_is_bitwise_identical(colours, tmp_path, workers):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    reference = tmp_path / "reference"
    subprocess.run(_train_proc(colours, reference, "--workers", workers), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_proc(colours, killed, "--workers", workers, "--save-every", "1"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "resume.safetensors").exists():
        time.sleep(0.02)
    time.sleep(0.5)  # somewhere in the middle of the run, possibly during a save
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.jsonl").exists() or len((killed / "metrics.jsonl").read_text().splitlines()) < 2
    subprocess.run([sys.executable, "-m", "swincli", "train", "--resume", str(killed), "--quiet"], check=True, env=env,
                   capture_output=True)  # fmt: skip
    a, b = tensors(reference / "last.safetensors"), tensors(killed / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_a_run_with_retired_settings_still_resumes(colours, tmp_path, capsys):
    """Runs of older versions saved num_classes and quiet in args.json and the resume state."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    out = tmp_path / "old"
    assert run_cli(capsys, "train", "--data", str(colours), "--epochs", "2", "--max-steps", "1", "-o", str(out), *TINY)[0] == 0
    state = out / "resume.safetensors"
    with safe_open(str(state), "pt") as fh:
        meta, saved = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    old = {**json.loads(meta["config"]), "num_classes": None, "quiet": True}
    save_file(saved, str(state), metadata={**meta, "config": json.dumps(old)})
    (out / "args.json").write_text(json.dumps(old))
    code, _, err = run_cli(capsys, "train", "--resume", str(out), "--quiet")
    assert code == 0, err
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert not {"num_classes", "quiet"} & set(json.loads((out / "args.json").read_text()))


# ------------------------------------------------------------------ torchrun
def _torchrun(data, out, *extra):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-port", str(29500 + os.getpid() % 1000), "-m", "swincli",
           "train", "--data", str(data), "--epochs", "1", "--max-steps", "2", "-o", str(out), "--size", "32",
           "--window", "2", "-b", "2", "--workers", "0", "--seed", "5", "--mixup", "0", "--cutmix", "0", "--aa", "none",
           "--reprob", "0", "--drop-path", "0", "--quiet", *extra]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tensors(out / "last.safetensors")


@pytest.mark.slow
@pytest.mark.timeout(1200)  # three torchrun runs, each allowed 300 s
def test_torchrun_ddp_fsdp_and_zero_agree(colours, tmp_path):
    ddp = _torchrun(colours, tmp_path / "ddp")
    fsdp = _torchrun(colours, tmp_path / "fsdp", "--fsdp")
    zero = _torchrun(colours, tmp_path / "zero", "--zero")
    for other in (fsdp, zero):
        assert all(torch.allclose(ddp[k], other[k], atol=1e-5) for k in ddp)


def test_memory_and_precision_options_run(colours, tmp_path, capsys):
    out = tmp_path / "opts"
    code, _, err = run_cli(capsys, "train", "--data", str(colours), "--epochs", "1", "--max-steps", "2", "-o", str(out),
                           "--ema", "0.99", "--amp", "bf16", "--accum-steps", "2", "--grad-checkpointing",
                           "--attn-chunk", "3", *TINY)  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["val_acc1"] is not None and load_model(out / "last.safetensors").config.num_classes == 3


def test_torchvision_dataset_offline_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SWIN_CACHE", str(tmp_path))
    code, _, err = run_cli(capsys, "train", "--data", "cifar10", *TINY)
    assert code == 1 and "cifar10 is not in" in err and "could not be downloaded" in err and "Traceback" not in err


def test_finetune_by_published_name_offline(colours, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("SWIN_CACHE", str(tmp_path / "cache"))
    code, _, err = run_cli(capsys, "finetune", "--model", "swinv2-b", "--data", str(colours), "--quiet")
    assert code == 1 and "swinv2_base_window8_256.ms_in1k" in err
