"""swin profile --runtimes: every deployment runtime beside eager PyTorch and the fast path, in one table.

The fast tests export a one-stage model (two blocks): exporting swin-nano's eight blocks to ONNX takes
10-20 s on this 2-core machine, and the figures' plumbing is the same. The slow test exports the tiny
swin-nano checkpoint to every format installed here, with the bf16 rows.
"""

from __future__ import annotations

import json

import pytest
import torch

from helpers import run_cli, run_cli_isolated

FAST = ["--iters", "2", "--warmup", "1", "-b", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def one_stage(tmp_path_factory):
    """One stage of two blocks at 32 px, window 2, three classes: the smallest model every exporter takes."""
    from swincli import save_model
    from swincli.models.config import SwinConfig
    from swincli.models.swin import SwinTransformer

    config = SwinConfig(img_size=32, window_size=2, embed_dim=16, depths=(2,), num_heads=(1,), num_classes=3)
    return save_model(SwinTransformer(config).eval(), tmp_path_factory.mktemp("one-stage") / "one-stage.safetensors")


def _onnx_installed() -> None:
    from swincli.export.formats import FORMATS

    missing = FORMATS["onnx"].missing("write") + FORMATS["onnx"].missing("run")
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def test_onnx_row_beside_eager_and_the_fast_path(one_stage, capsys):
    _onnx_installed()
    code, out, err = run_cli(capsys, "profile", "--checkpoint", one_stage, "--runtimes", "onnx", *FAST, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    rows = {r["name"]: r for r in report["runtimes"]}
    assert list(rows) == ["eager", "fast path", "onnx"]
    onnx = rows["onnx"]
    assert onnx["error"] is None and onnx["runtime"] == "ONNX Runtime" and onnx["precision"] == "fp32"
    assert onnx["images_per_s"] > 0 and onnx["latency_ms"] > 0 and onnx["ratio_to_eager"] > 0
    assert onnx["max_rel_diff"] < 1e-4 and onnx["file_bytes"] > 0
    assert rows["eager"]["ratio_to_eager"] == 1.0 and rows["eager"]["max_rel_diff"] == 0
    assert rows["fast path"]["max_rel_diff"] < 1e-4 and rows["eager"]["file_bytes"] is None
    assert all(r["peak_memory_bytes"] is None or r["peak_memory_bytes"] >= 0 for r in rows.values())
    info = report["runtimes_info"]
    assert info["batch_size"] == 2 and info["rounds"] == 2 and "resident set" in info["memory_measured_by"]
    assert "throughput" not in report  # the runtimes table replaces the speed table

    from swincli.cli.profile_cmd import _render

    _render(report)  # the table, from the same data
    table = capsys.readouterr().out
    assert "onnx (ONNX Runtime)" in table and "img/s @2" in table and "fast path" in table


def test_an_export_failure_is_that_rows_error(one_stage, capsys, monkeypatch):
    _onnx_installed()
    from swincli.export import onnx_format

    def broken(*args, **kwargs):
        raise RuntimeError("the converter fell over\nsecond line")

    monkeypatch.setattr(onnx_format, "write", broken)
    code, out, err = run_cli(capsys, "profile", "--checkpoint", one_stage, "--runtimes", "onnx", *FAST, "--format", "json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["runtimes"]}
    assert rows["onnx"]["error"].startswith("onnx export failed: the converter fell over")
    assert "\n" not in rows["onnx"]["error"] and rows["onnx"]["images_per_s"] is None
    assert rows["eager"]["images_per_s"] > 0 and rows["fast path"]["error"] is None


def test_a_typo_gets_the_closest_name(capsys):
    code, _, err = run_cli(capsys, "profile", "--model", "swin-nano", "--runtimes", "onnx,onxx")
    assert code == 2 and "did you mean onnx?" in err and len(err.strip().splitlines()) == 1


def test_tensorrt_without_a_gpu_is_one_line(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, _, err = run_cli(capsys, "profile", "--model", "swin-nano", "--runtimes", "tensorrt")
    assert code == 1 and "tensorrt needs a CUDA GPU" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flags", [["--attention"], ["--mode", "both"], ["--compare", "timm"], ["--iters", "0"]])
def test_what_runtimes_does_not_go_with(flags, capsys):
    code, _, err = run_cli(capsys, "profile", "--model", "swin-nano", "--runtimes", "onnx", *flags)
    assert code == 2 and "--runtimes" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_every_installed_runtime_with_bf16_rows(tiny_checkpoint, capsys):
    """``all``: a verified row for every format this machine writes and runs on the CPU, and with ``--amp bf16``
    the PyTorch rows under autocast and OpenVINO's half file."""
    from swincli.profiling.runtimes import select_formats

    formats, _ = select_formats("all", "cpu")
    code, out, err = run_cli_isolated("profile", "--checkpoint", tiny_checkpoint, "--runtimes", "all", "--amp", "bf16",
                                      *FAST, "--format", "json")  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)["runtimes"]
    fp32 = {r["name"]: r for r in rows if r["requested"] == "fp32"}
    assert set(fp32) == {"eager", "fast path", *(f.name for f in formats)}
    for row in fp32.values():
        assert row["error"] is None and row["images_per_s"] > 0 and row["max_rel_diff"] < 1e-3, row
        assert row["precision"] == "fp32" and (row["file_bytes"] or 0) >= (0 if row["format"] is None else 1), row
    bf16 = {r["name"]: r for r in rows if r["requested"] == "bf16"}
    assert set(bf16) == {"eager", "fast path"} | ({"openvino"} if "openvino" in fp32 else set())
    for row in bf16.values():
        assert row["error"] is None and row["images_per_s"] > 0 and 0 < row["max_rel_diff"] < 5e-2, row
