"""``swin export``: each format written through the real command, loaded by its runtime's own API (not
ours), compared with eager PyTorch; ``swin predict``/``eval`` on the file; and every bad case in one line.

The fast tier exports one V1 model to ONNX and runs it; the other formats (AOTInductor compiles C++), V2,
fixed batches and the refusal of a file that is off are the slow tier's.
"""

from __future__ import annotations

import json

import pytest
import torch

from helpers import CLASS_NAMES, randomize, run_cli, run_cli_isolated

SLOW_FORMATS = {"pt2", "executorch"}


@pytest.fixture(scope="session")
def decisive(tmp_path_factory):
    """swin-nano (V1) and swinv2-nano (V2) at 32 px, window 2, with weights that give decisive logits and
    the classes of ``colours``: ties between classes would let label comparisons flip on rounding."""
    from swincli import create_model, save_model

    root = tmp_path_factory.mktemp("decisive")
    out = {}
    for version, name in ((1, "swin-nano"), (2, "swinv2-nano")):
        net = randomize(create_model(name, num_classes=3, img_size=32, window_size=2, drop_path_rate=0.0)).eval()
        out[version] = save_model(net, root / f"v{version}.safetensors", class_names=CLASS_NAMES)
    return out


@pytest.fixture(scope="session")
def exported(decisive, tmp_path_factory):
    """``exported(fmt, version)``: ``swin export`` of ``decisive[version]`` (its JSON report, the file), once a
    session, in a child process (:func:`helpers.run_cli_isolated`)."""
    root, done = tmp_path_factory.mktemp("exported"), {}

    def get(fmt: str, version: int):
        if (fmt, version) not in done:
            from swincli.export.formats import find_format

            out = root / f"v{version}{find_format(fmt).suffix}"
            code, printed, err = run_cli_isolated("export", decisive[version], "--to", fmt, "-o", out, "--format", "json")
            assert code == 0, err
            done[fmt, version] = json.loads(printed), out
        return done[fmt, version]

    return get


def _eager(path, x):
    from swincli.loader import load

    with torch.no_grad():
        return load(str(path)).eval()(x)


NATIVE = """
import sys, numpy as np, torch
fmt, path, src, dst = sys.argv[1:]
x = torch.from_numpy(np.load(src))
if fmt == "openvino":
    import openvino as ov
    out = torch.from_numpy(ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x.numpy())[0])
elif fmt == "pt2":
    from torch._inductor import aoti_load_package
    out = aoti_load_package(path)(x)
else:
    from executorch.runtime import Runtime
    out = Runtime.get().load_program(path).load_method("forward").execute([x])[0]
np.save(dst, out.float().numpy())
"""


def _run_natively(fmt: str, path, x: torch.Tensor) -> torch.Tensor:
    """The file through its runtime's own API: nothing of swincli in between (in a child process, but for ONNX
    Runtime: see :func:`helpers.run_cli_isolated`)."""
    if fmt != "onnx":
        import subprocess
        import sys
        import tempfile

        import numpy as np

        with tempfile.TemporaryDirectory() as tmp:
            np.save(f"{tmp}/x.npy", x.numpy())
            subprocess.run([sys.executable, "-c", NATIVE, fmt, str(path), f"{tmp}/x.npy", f"{tmp}/y.npy"], check=True,
                           capture_output=True)  # fmt: skip
            return torch.from_numpy(np.load(f"{tmp}/y.npy"))
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"images": x.numpy()})[0])


def _rel(want: torch.Tensor, got: torch.Tensor) -> float:
    return ((got - want).abs().max() / want.abs().max()).item()


@pytest.mark.parametrize("fmt, suffix, version", [
    ("onnx", ".onnx", 1), pytest.param("onnx", ".onnx", 2, marks=pytest.mark.slow),
    pytest.param("openvino", ".xml", 2, marks=pytest.mark.slow),
    pytest.param("pt2", ".pt2", 2, marks=pytest.mark.slow), pytest.param("executorch", ".pte", 1, marks=pytest.mark.slow),
])  # fmt: skip
def test_export_runs_in_its_own_runtime(fmt, suffix, version, decisive, exported):
    pytest.importorskip({"onnx": "onnxruntime", "openvino": "openvino", "pt2": "torch", "executorch": "executorch"}[fmt])
    report, out = exported(fmt, version)
    assert out.suffix == suffix and report["batch"] is None and report["verification"]["batches"] == [1, 3]
    assert report["verification"]["max_rel_diff"] < report["verification"]["tolerance"] <= 1e-3
    for batch in (1, 3):  # traced at 2
        x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
        assert _rel(_eager(decisive[version], x), _run_natively(fmt, out, x)) < 1e-4
    from swincli.export.formats import find_format
    from swincli.export.runtime import read_facts

    if fmt != "openvino":  # OpenVINO's record is read back by predict in test_predict_and_eval... (in a child)
        facts = read_facts(out, find_format(fmt))  # what predict needs rides inside (or beside) the file
        assert facts.class_names == CLASS_NAMES and facts.config.image_hw == (32, 32) and facts.config.version == version


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), pytest.param("openvino", ".xml", marks=pytest.mark.slow)])
def test_predict_and_eval_on_an_exported_file_answer_as_the_checkpoint(fmt, suffix, decisive, exported, colours, capsys):
    version = 1 if fmt == "onnx" else 2
    out = exported(fmt, version)[1]
    cli = (lambda *args: run_cli(capsys, *args)) if fmt == "onnx" else run_cli_isolated
    runs = {}
    for weights in (decisive[version], out):
        code, printed, err = cli("predict", colours / "val", "--checkpoint", weights, "--format", "json", "-k", "3")
        assert code == 0, err
        runs[weights] = _json_lines(printed)
    want, got = runs[decisive[version]], runs[out]
    assert len(want) == len(got) == 12
    for a, b in zip(want, got):
        assert a["path"] == b["path"]
        assert [(e["index"], e["label"]) for e in a["top_k"]] == [(e["index"], e["label"]) for e in b["top_k"]]
        assert all(abs(e["prob"] - f["prob"]) <= 2e-6 for e, f in zip(a["top_k"], b["top_k"]))
    scores = [json.loads(cli("eval", "-c", w, "--data", colours, "--format", "json")[1]) for w in (decisive[version], out)]
    assert scores[0]["acc1"] == scores[1]["acc1"] and abs(scores[0]["loss"] - scores[1]["loss"]) < 1e-5


@pytest.mark.slow
def test_a_fixed_batch_file_takes_any_number_of_images(decisive, colours, tmp_path, capsys):
    out = tmp_path / "b2.onnx"
    code, printed, _ = run_cli(capsys, "export", decisive[1], "--to", "onnx", "-o", out, "-b", "2")
    assert code == 0 and "batch 2," in printed
    import onnxruntime as ort

    assert ort.InferenceSession(str(out)).get_inputs()[0].shape[0] == 2
    code, printed, _ = run_cli(capsys, "predict", colours / "val", "-c", out, "--format", "json", "-b", "5")
    assert code == 0 and len(_json_lines(printed)) == 12  # batches of 5 fed as 2 + 2 + 1 (padded)


def test_the_report_and_the_check_table(exported, capsys):
    from swincli.cli.export_cmd import summary

    report, out = exported("onnx", 1)
    assert report["precision"] == "fp32" and report["bytes"] == out.stat().st_size and report["files"] == [str(out)]
    line = summary(report)
    assert f"Saved [bold]{out}[/bold] (" in line and "MB, ONNX Runtime, fp32, dynamic batch, 32x32 px): logits within" in line
    assert "on 8 generated images, batches 1, 3" in line
    code, printed, _ = run_cli(capsys, "export", "--check", "--format", "json")
    rows = {r["format"]: r for r in json.loads(printed)}
    assert code == 0 and set(rows) == {"onnx", "openvino", "pt2", "tensorrt", "executorch"}
    assert rows["onnx"]["write"] is True and rows["onnx"]["run"] is True
    if not torch.cuda.is_available():
        assert rows["tensorrt"]["run"] is not True


@pytest.mark.slow
def test_a_file_off_beyond_tolerance_is_not_written(decisive, tmp_path, capsys, monkeypatch):
    from swincli.export import onnx_format

    real = onnx_format.Runner.__call__
    monkeypatch.setattr(onnx_format.Runner, "__call__", lambda self, x: real(self, x) * 1.01)
    code, _, err = run_cli(capsys, "export", decisive[1], "--to", "onnx", "-o", tmp_path / "m.onnx")
    assert code == 1 and "nothing was written" in err and "1.0e-02" not in err
    assert list(tmp_path.iterdir()) == []  # no file, no temporary folder


def _missing(monkeypatch, module: str) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))


@pytest.mark.parametrize("args, code, says", [
    (["--to", "onxx"], 2, "did you mean onnx?"),
    (["--to", "openvin"], 2, "did you mean openvino?"),
    (["--to", "onnx", "--size", "40"], 2, "does not tile into 2x2 windows in stage 2"),
    (["--to", "onnx", "--int8"], 2, "--int8 needs --data DIR"),
    (["--to", "pt2", "--int8", "--data", "."], 2, "--int8 is available for onnx or openvino, not pt2"),
    (["--to", "executorch", "--half"], 2, "executorch export has no --half"),
    (["--to", "onnx", "-b", "2", "--dynamic-batch"], 2, "--batch and --dynamic-batch are alternatives"),
    (["--to", "onnx", "--half", "--int8", "--data", "."], 2, "--half and --int8 are alternatives"),
    (["--to", "openvino", "--device", "cuda"], 2, "openvino runs on cpu, not cuda"),
    ([], 2, "export needs --to FORMAT"),
])  # fmt: skip
def test_bad_export_flags_get_one_line(args, code, says, decisive, tmp_path, capsys):
    got, out, err = run_cli(capsys, "export", decisive[1], "-o", tmp_path / "m.onnx", *args)
    assert got == code and says in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


def test_gpu_only_format_and_missing_extras_get_one_line(decisive, tmp_path, capsys, monkeypatch):
    if not torch.cuda.is_available():
        code, _, err = run_cli(capsys, "export", decisive[1], "--to", "engine", "-o", tmp_path / "m.engine")
        assert code == 1 and "tensorrt needs a CUDA GPU and this machine has none" in err
    _missing(monkeypatch, "openvino")
    code, _, err = run_cli(capsys, "export", decisive[1], "--to", "openvino", "-o", tmp_path / "m.xml")
    assert code == 1 and "exporting to openvino needs openvino, which is not installed" in err
    assert 'pip install "swincli[openvino]"' in err
    assert list(tmp_path.iterdir()) == []


def test_exported_files_refuse_what_they_cannot_do(decisive, exported, colours, tmp_path, capsys):
    out = exported("onnx", 1)[1]
    code, _, err = run_cli(capsys, "export", decisive[1], "--to", "onnx", "-o", out)
    assert code == 1 and "already exists" in err
    for args, says in ((["--features"], "--features needs the checkpoint"), (["--size", "64"], "cannot be resized"),
                       (["--explain", tmp_path / "cams"], "--explain needs the checkpoint")):  # fmt: skip
        code, _, err = run_cli(capsys, "predict", colours / "val", "-c", out, *args)
        assert code == 2 and says in err, err
    code, _, err = run_cli(capsys, "predict", colours / "val", "-c", decisive[1], "--runtime", "onnx")
    assert code == 1 and "v1.safetensors is not a readable onnx file" in err
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(3, 3), (torch.randn(1, 3),), str(plain), dynamo=False)
    code, _, err = run_cli(capsys, "predict", colours / "val", "-c", plain)
    assert code == 1 and "carries no swincli metadata" in err


@pytest.mark.slow
def test_convert_to_onnx_goes_through_the_exporter(decisive, tmp_path, capsys):
    code, printed, _ = run_cli(capsys, "convert", decisive[2], "--to", "onnx", "-o", tmp_path / "m.onnx")
    assert code == 0 and "batches 1, 3" in printed and "Saved the ONNX model" in printed
    from swincli.export.formats import find_format
    from swincli.export.runtime import read_facts

    assert read_facts(tmp_path / "m.onnx", find_format("onnx")).class_names == CLASS_NAMES


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "openvino", "pt2"])
def test_half_files_hold_fp16_weights_and_stay_close(fmt, decisive, tmp_path, capsys):
    from swincli.export.formats import find_format

    out = tmp_path / f"h{find_format(fmt).suffix}"
    code, printed, err = run_cli_isolated("export", decisive[1], "--to", fmt, "--half", "-o", out, "--format", "json")
    report = json.loads(printed)
    assert code == 0 and report["precision"] == "fp16", err
    assert report["verification"]["max_rel_diff"] <= report["verification"]["tolerance"] <= 3e-2
    assert 0.4 < report["bytes"] / decisive[1].stat().st_size < 0.9  # the weights are stored in half
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert _rel(_eager(decisive[1], x), _run_natively(fmt, out, x if fmt == "openvino" else x.half()).float()) < 3e-2


def test_runtime_overrides_the_suffix(exported, decisive, colours, capsys):
    """OpenVINO reads ONNX files: ``--runtime openvino`` runs the .onnx with the record the file carries."""
    pytest.importorskip("openvino")
    out = exported("onnx", 1)[1]
    runs = [run_cli_isolated("predict", colours / "val", "-c", w, "--format", "json", *extra)
            for w, extra in ((decisive[1], ()), (out, ("--runtime", "openvino")))]  # fmt: skip
    assert all(code == 0 for code, _, _ in runs)
    assert "running v1.onnx with OpenVINO (fp32)" in runs[1][2]
    labels = [[r["top_k"][0]["label"] for r in _json_lines(printed)] for _, printed, _ in runs]
    assert labels[0] == labels[1] and len(labels[0]) == 12


@pytest.mark.parametrize("batch, fmt, images, calls", [
    (None, "executorch", 150, [64, 64, 22]),  # a dynamic batch up to the format's bound: fed in parts
    (4, "onnx", 10, [4, 4, 4]),  # a fixed batch: N at a time, the last padded (and the padding dropped)
    (None, "onnx", 10, [10]),
])  # fmt: skip
def test_an_exported_model_feeds_its_file_batches_it_takes(batch, fmt, images, calls):
    from pathlib import Path

    from swincli.checkpoint import Preprocessing
    from swincli.export.formats import FORMATS
    from swincli.export.metadata import ExportFacts
    from swincli.export.runtime import ExportedModel
    from swincli.models.config import SwinConfig

    seen = []

    def runner(x):
        seen.append(len(x))
        return x.flatten(1)[:, :3]

    model = ExportedModel(runner, ExportFacts(SwinConfig(), None, Preprocessing(), batch=batch), FORMATS[fmt], Path("m"))
    x = torch.randn(images, 3, 2, 2)
    assert torch.equal(model(x), x.flatten(1)[:, :3]) and seen == calls
