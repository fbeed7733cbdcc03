"""Post-training INT8 quantization for ``swin export --int8 --data DIR``.

An int8 file is worth writing only if it runs faster than fp32 in its runtime and still gives fp32's
labels (:data:`~swincli.export.verify.INT8_AGREEMENT` of them, on images nobody calibrated on). Static
quantization, its scales calibrated on the user's own images, does both: calibration reads the
training split where there is one (the verification reads ``val/``), spread evenly over the files so
that every class folder is seen.

The settings were chosen by measurement, on swin-nano V1 and V2 models trained on the built-in shapes
(1,000 validation images each) and on swin-t for speed; in both runtimes:

- only matrix products and convolutions take int8 inputs, where the int8 kernels are: softmax, layer
  norms, residual adds, GELU and V2's cosine scaling stay in float;
- the classifier stays in float. Its input, the pooled features, is the one tensor whose rounding
  goes straight into the logits: in float it cut the labels that flip 4 to 6 times, for no
  measurable speed (it is one small matrix product);
- activation ranges are the calibration images' minimum and maximum. nncf's default averages each
  image's extremes, which clips the rare large activation: its mean logit error was 1.3 to 2.5 times,
  and its worst images' error (what a top-1 check on a few images sees) 1.5 to 4 times larger;
- weights are int8 per output channel, activations asymmetric 8 bit. ONNX Runtime's weights use 7 of
  the 8 bits (``reduce_range``): its u8 x s8 kernels on CPUs without VNNI can saturate otherwise, and
  the file may run on another CPU than the one that checked it; it cost 5% more logit error here;
- whatever is computed from constants only (V2's continuous-position-bias MLP) stays in float: the
  runtime folds it into a constant, and rounding it would only add error.

OpenVINO: nncf's transformer preset (``ModelType.TRANSFORMER``, ``MIXED``), with its SmoothQuant step
(it lowered the error a little more). ONNX: ONNX Runtime's static quantizer, QDQ format, no
pre-processing (``quant_pre_process`` made the file slower and fails on V2 graphs); attention's two
products of activations stay in float there: quantized, they made the worst images' error up to 1.6
times larger and the file no faster (nncf quantizes them with no such loss, and they are 5% of its speed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from swincli.errors import SwinError, SwinUsageError
from swincli.export.spec import ExportSpec

if TYPE_CHECKING:
    import onnx
    import openvino

CALIBRATION_IMAGES = 300  # at most this many
CALIBRATION_BATCH = 8  # ONNX Runtime's calibration runs (min and max do not depend on the batching)
QUANTIZED_OPS = ("MatMul", "Gemm", "Conv")  # ONNX op types with int8 inputs
PASS_THROUGH = ("Add", "Convert", "Cast", "Identity", "Reshape", "Squeeze", "Flatten")  # between classifier and logits


def calibration_images(net: torch.nn.Module, data: str | Path) -> torch.Tensor:
    """Up to :data:`CALIBRATION_IMAGES` images of ``data`` (its ``train/`` split when it has ``train/`` and
    ``val/``), evenly spread over the sorted files, through ``net``'s evaluation preprocessing."""
    from swincli.datasets.image_files import collect_inputs
    from swincli.export.verify import load_images

    folder = Path(data)
    if not folder.is_dir():
        raise SwinUsageError(f"--data {data} is not a folder of images", hint="pass a folder (class folders are fine)")
    if (folder / "train").is_dir() and (folder / "val").is_dir():
        folder = folder / "train"
    paths = collect_inputs([str(folder)])
    if not paths:
        raise SwinUsageError(f"no images found in {folder} to calibrate the int8 model on",
                             hint="pass a folder with .jpg/.png images")  # fmt: skip
    count = min(CALIBRATION_IMAGES, len(paths))
    return load_images(net, [paths[i * len(paths) // count] for i in range(count)])


def openvino_int8(net: torch.nn.Module, spec: ExportSpec, images: torch.Tensor) -> openvino.Model:
    """``net`` as an INT8 ``openvino.Model``, calibrated on ``images`` one at a time (nncf's transformer
    statistics are per image) with a dynamic batch, then reshaped to the spec's batch."""
    from swincli.export.openvino_format import convert

    with _quiet():  # nncf.torch, which openvino's converter imports where nncf is, logs about CUDA on import
        nncf = _import("nncf", "openvino")
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        model = convert(net, dataclasses.replace(spec, batch=None))
        dataset = nncf.Dataset([x[None].numpy() for x in images.float().cpu()])
        model = nncf.quantize(
            model, dataset, model_type=nncf.ModelType.TRANSFORMER, preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(images),
            ignored_scope=nncf.IgnoredScope(names=_openvino_classifier(model)),
            advanced_parameters=AdvancedQuantizationParameters(
                activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX),
        )  # fmt: skip
    if spec.batch:
        model.reshape([spec.batch, spec.channels, spec.height, spec.width])
    return model


def _openvino_classifier(model: openvino.Model) -> list[str]:
    """The name of the MatMul whose output is the logits (behind its bias add), if there is one."""
    node = model.get_results()[0].input(0).get_source_output().get_node()
    while node is not None and node.get_type_name() in PASS_THROUGH:
        sources = [i.get_source_output().get_node() for i in node.inputs()]
        node = next((n for n in sources if n.get_type_name() != "Constant"), None)
    return [node.get_friendly_name()] if node is not None and node.get_type_name() == "MatMul" else []


def onnx_int8(fp32_path: Path, out_path: Path, images: torch.Tensor) -> None:
    """Quantize the fp32 ONNX file at ``fp32_path`` into ``out_path`` (QDQ: uint8 activations, int8 weights per
    channel in 7 of their bits), calibrated on ``images``; the file keeps ``fp32_path``'s ``metadata_props``."""
    import onnx

    quantization = _import("onnxruntime.quantization", "onnx")
    source = onnx.load(str(fp32_path))  # read only: the quantizer loads its own copy
    with _quiet():
        quantization.quantize_static(
            str(fp32_path), str(out_path), _Reader(images, source.graph.input[0]),
            quant_format=quantization.QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OPS),
            activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8, per_channel=True,
            reduce_range=True, calibrate_method=quantization.CalibrationMethod.MinMax,
            nodes_to_exclude=_onnx_float_nodes(source.graph),
        )  # fmt: skip
    proto = onnx.load(str(out_path))
    del proto.metadata_props[:]
    proto.metadata_props.extend(source.metadata_props)
    onnx.save(proto, str(out_path))


def _onnx_float_nodes(graph: onnx.GraphProto) -> list[str]:
    """Nodes of :data:`QUANTIZED_OPS` to keep in float: products of two activations (attention's q k^T and
    attention x v), those of constants only (V2's CPB MLP), and the classifier, found by walking back from
    the first output through its bias add."""
    constant = {t.name for t in graph.initializer} | {""}
    producer, keep = {}, []
    for node in graph.node:  # an ONNX graph is topologically sorted
        producer.update({out: node for out in node.output})
        fixed = [name in constant for name in node.input]
        if all(fixed):
            constant.update(node.output)
        if node.op_type in QUANTIZED_OPS and (all(fixed) or not any(fixed)):
            keep.append(node.name)
    node = producer.get(graph.output[0].name)
    while node is not None and node.op_type in PASS_THROUGH:
        node = next((producer.get(i) for i in node.input if i not in constant), None)
    if node is not None and node.op_type in ("MatMul", "Gemm"):
        keep.append(node.name)
    return keep


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader``: ``images`` in batches of the file's fixed batch size
    (images repeated to fill the last), or of :data:`CALIBRATION_BATCH` for a dynamic batch."""

    def __init__(self, images: torch.Tensor, graph_input: onnx.ValueInfoProto) -> None:
        dim = graph_input.type.tensor_type.shape.dim[0]
        batch = dim.dim_value if dim.HasField("dim_value") else CALIBRATION_BATCH
        padded = images.float().cpu()[torch.arange(-(-len(images) // batch) * batch) % len(images)]
        self.batches: Iterator[torch.Tensor] = iter(padded.split(batch))
        self.name = graph_input.name

    def get_next(self) -> dict | None:
        x = next(self.batches, None)
        return None if x is None else {self.name: x.numpy()}


def _import(module: str, extra: str) -> types.ModuleType:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SwinError(f"--int8 needs {module.split('.')[0]}, which is not installed",
                        hint=f'python -m pip install "swincli[{extra}]"') from None  # fmt: skip


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars (nncf draws them on stdout), log lines or warnings from the quantizers: the export
    prints its own summary. Logging is switched off rather than redirected, so that no handler the libraries
    create meanwhile keeps a captured stream."""
    previous, placeholder = logging.root.manager.disable, logging.NullHandler()
    logging.disable(logging.WARNING)
    logging.root.addHandler(placeholder)  # else onnxruntime's logging.warning() calls configure the root logger
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.root.removeHandler(placeholder)
        logging.disable(previous)
