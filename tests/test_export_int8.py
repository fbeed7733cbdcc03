"""Post-training INT8 (swincli.export.quantize): the int8 files of a trained tiny model give its fp32 labels.

The model is trained here, in a few seconds: swin-nano at 32 px, window 2, on the colour class folders
of helpers.make_folder. A random model's logits are near ties, where any rounding flips a label, so
agreement would measure luck rather than the quantizer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from helpers import CLASS_NAMES, make_folder

from swincli.errors import SwinError, SwinUsageError
from swincli.export import quantize
from swincli.export.spec import ExportSpec
from swincli.export.verify import INT8_AGREEMENT, compare, load_images

META = '{"class_names": ["blue", "green", "red"]}'
MAX_LOGIT_ERROR = 0.02  # of the largest logit: measured 0.002-0.004; calibrated on images scaled by 0.1: 0.03
CALIBRATION = 30  # of the 120 training images: nncf's time grows with them


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model, data folder, validation images): swin-nano trained for 40 steps on 120 colour images (60 to validate)."""
    from swincli import create_model
    from swincli.datasets.image_files import collect_inputs

    data = make_folder(tmp_path_factory.mktemp("int8-colours"), per_class=40)
    torch.manual_seed(0)
    net = create_model("swin-nano", num_classes=3, img_size=32, window_size=2, drop_path_rate=0.0)
    paths = collect_inputs([str(data / "train")])
    x = load_images(net, paths)
    y = torch.tensor([CLASS_NAMES.index(Path(p).parent.name) for p in paths])
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for step in range(40):
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(step))[:16]
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return net, data, load_images(net, collect_inputs([str(data / "val")]))


def spec_for(fmt: str, batch: int | None = None) -> ExportSpec:
    return ExportSpec(fmt, batch, half=False, int8=True, device="cpu", height=32, width=32)


def check(net, run, images: torch.Tensor, batch: int = 3) -> None:
    """``run`` (an int8 runner) gives ``net``'s top-1 on :data:`INT8_AGREEMENT` of ``images``, and logits
    close to fp32's: a quantizer that clips or rounds badly still keeps the labels of a model this sure."""
    with torch.no_grad():
        want = net(images)
    got = torch.cat([run(images[i : i + batch]) for i in range(0, len(images), batch)])
    _, rel, agree = compare(want, got)
    print(f"agreement {agree:.3f}, largest logit error {rel:.4f} of the largest logit")
    assert agree >= INT8_AGREEMENT
    assert rel < MAX_LOGIT_ERROR


def test_openvino_int8_agrees_with_fp32(trained, tmp_path, monkeypatch):
    pytest.importorskip("nncf")
    import openvino as ov

    from swincli.export import openvino_format

    net, data, val = trained
    monkeypatch.setattr(quantize, "CALIBRATION_IMAGES", CALIBRATION)
    spec = spec_for("openvino", batch=3)
    model = quantize.openvino_int8(net, spec, quantize.calibration_images(net, data))
    path = tmp_path / "int8.xml"
    openvino_format.write(net, path, spec, META, model=model)
    saved = ov.Core().read_model(str(path))
    assert sum(op.get_type_name() == "FakeQuantize" for op in saved.get_ops()) >= 20  # every linear layer's input
    classifier = saved.get_results()[0].input(0).get_source_output().get_node().input(0).get_source_output().get_node()
    assert classifier.get_type_name() == "MatMul"
    assert classifier.input(0).get_source_output().get_node().get_type_name() != "FakeQuantize"  # kept in float
    assert openvino_format.read_metadata(path) == META
    check(net, openvino_format.Runner(path), val)


def test_onnx_int8_agrees_with_fp32(trained, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime.quantization")
    import onnx

    from swincli.export import onnx_format

    net, data, val = trained
    monkeypatch.setattr(quantize, "CALIBRATION_IMAGES", CALIBRATION)
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    onnx_format.write(net, fp32, spec_for("onnx"), META)
    quantize.onnx_int8(fp32, int8, quantize.calibration_images(net, data))
    graph = onnx.load(str(int8)).graph
    assert sum(node.op_type == "QuantizeLinear" for node in graph.node) >= 20
    assert any(init.data_type == onnx.TensorProto.INT8 for init in graph.initializer)  # int8 weights
    producer = {out: node for node in graph.node for out in node.output}
    classifier = producer[graph.output[0].name]
    assert classifier.op_type == "Gemm" and producer[classifier.input[0]].op_type != "DequantizeLinear"
    assert onnx_format.read_metadata(int8) == META
    check(net, onnx_format.Runner(int8), val)


def test_calibration_prefers_train_and_spreads(tmp_path, monkeypatch):
    from swincli import create_model
    from swincli.datasets.image_files import collect_inputs

    net = create_model("swin-nano", num_classes=3, img_size=32, window_size=2)
    data = make_folder(tmp_path / "split", per_class=4)  # train: 4 a class, val: 2 a class
    assert len(quantize.calibration_images(net, data)) == 12
    monkeypatch.setattr(quantize, "CALIBRATION_IMAGES", 3)
    train = collect_inputs([str(data / "train")])
    first_of_each_class = load_images(net, [train[0], train[4], train[8]])
    assert torch.equal(quantize.calibration_images(net, data), first_of_each_class)
    flat = make_folder(tmp_path / "flat", per_class=2, split=False)
    assert len(quantize.calibration_images(net, flat)) == 3


def test_calibration_needs_images(tmp_path):
    from swincli import create_model

    net = create_model("swin-nano", num_classes=3, img_size=32, window_size=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SwinUsageError, match="no images"):
        quantize.calibration_images(net, tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    with pytest.raises(SwinUsageError, match="could be read"):
        quantize.calibration_images(net, tmp_path / "broken")
    with pytest.raises(SwinUsageError, match="not a folder"):
        quantize.calibration_images(net, tmp_path / "missing")


def test_missing_quantizer_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(SwinError, match="nncf") as info:
        quantize.openvino_int8(None, spec_for("openvino"), torch.zeros(1, 3, 32, 32))
    assert "swincli[openvino]" in info.value.hint
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)
    with pytest.raises(SwinError, match="onnxruntime") as info:
        quantize.onnx_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", torch.zeros(1, 3, 32, 32))
    assert "swincli[onnx]" in info.value.hint
