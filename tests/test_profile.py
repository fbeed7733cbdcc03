"""swin profile: the paper's figures, JSON schema, the attention schemes, timm in the same run."""

import json

import pytest
import torch

from helpers import randomize
from swincli import create_model
from swincli.cli import main
from swincli.profiling.attention_schemes import SCHEMES, use_scheme

TABLE1 = [  # (name, size, window, params M, GMACs): the paper's Table 1 / the V2 model zoo
    ("swin-t", None, None, 28.3, 4.5),
    ("swin-s", None, None, 49.6, 8.7),
    ("swin-b", None, None, 87.8, 15.4),
    ("swin-b", "384", "12", 87.9, 47.1),
    ("swin-l", "384", "12", 196.7, 104.0),
    ("swinv2-t", None, None, 28.3, 5.9),
]


@pytest.mark.parametrize("name, size, window, params, gmacs", TABLE1)
def test_table1_figures(name, size, window, params, gmacs, capsys):
    args = ["profile", "--model", name, "--iters", "0", "--json", "--device", "cpu"]
    args += ["--size", size, "--window", window] if size else []
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert round(data["params"] / 1e6, 1) == params
    assert round(data["macs"] / 1e9, 1) == pytest.approx(gmacs, abs=0.11)  # the paper rounds 8.75 to 8.7
    assert sum(s["macs"] for s in data["stages"]) + data["macs_stem_head"] == data["macs"]


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_profile_json_for_nano_models(name, capsys):
    assert main(["profile", "--model", name, "--json", "-b", "2", "--iters", "2", "--warmup", "1", "--mode", "both",
                 "--device", "cpu", "--size", "64", "--window", "4"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    for key in ("params", "macs", "throughput", "latency_ms", "peak_memory_bytes", "device", "batch_size", "stages"):
        assert key in data, key
    assert data["throughput"] > 0 and data["latency_ms"]["p90"] >= data["latency_ms"]["median"] > 0
    assert data["train"]["images_per_s"] > 0 and "train_grad_checkpointing" in data
    assert [s["window"][0] for s in data["stages"]] == [4, 4, 4, 2]


def test_attention_table_and_plot(tmp_path, capsys):
    target = tmp_path / "t5.png"
    assert main(["profile", "--model", "swin-nano", "--size", "64", "--window", "4", "-b", "1", "--iters", "1",
                 "--warmup", "0", "--attention", "--plot", str(target), "--device", "cpu"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Attention schemes" in out and all(s in out for s in SCHEMES)
    from PIL import Image

    assert Image.open(target).size == (900, 420)


@pytest.mark.parametrize("name", ["swin-nano", "swinv2-nano"])
def test_padding_scheme_equals_cyclic_shift_and_the_others_differ(name):
    model = randomize(create_model(name, num_classes=5)).eval().double()
    x = torch.randn(2, 3, *model.config.image_hw, dtype=torch.float64)
    with torch.no_grad():
        cyclic = model(x)
        outputs = {}
        for scheme in ("padding", "no-shift", "sliding"):
            with use_scheme(model, scheme):
                outputs[scheme] = model(x)
        assert torch.equal(model(x), cyclic)  # the scheme is undone on exit
    assert torch.allclose(outputs["padding"], cyclic, atol=1e-10)
    assert not torch.allclose(outputs["no-shift"], cyclic, atol=1e-6)
    assert not torch.allclose(outputs["sliding"], cyclic, atol=1e-6)


def test_sliding_window_matches_a_direct_computation():
    """One interior query of stage 1, by hand: softmax over its centred M x M neighbourhood (+ bias)."""
    from swincli.profiling.attention_schemes import SlidingBlock

    model = randomize(create_model("swin-nano", num_classes=5, img_size=64, window_size=3)).eval().double()
    block = model.layers[0].blocks[0]
    attn = block.attn
    x = torch.randn(1, 16, 16, 32, dtype=torch.float64)
    with torch.no_grad():
        out = SlidingBlock.attend(block, x)
        qkv = torch.nn.functional.linear(x, attn.qkv.weight, attn.qkv.bias).view(1, 16, 16, 3, 1, 32)
        q, k, v = qkv[0, :, :, 0, 0], qkv[0, :, :, 1, 0], qkv[0, :, :, 2, 0]
        bias = attn.position_bias()[0]  # (9, 9): centre query index 4
        y, xq = 7, 9
        keys = [(y + dy, xq + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        logits = torch.stack([q[y, xq] @ k[a, b] * 32**-0.5 + bias[4, i] for i, (a, b) in enumerate(keys)])
        mixed = sum(w * v[a, b] for w, (a, b) in zip(logits.softmax(0), keys))
        want = attn.proj(mixed)
    assert torch.allclose(out[0, y, xq], want, atol=1e-10)


def test_compare_timm(capsys):
    pytest.importorskip("timm")
    assert main(["profile", "--model", "swinv2-nano", "--size", "64", "--window", "4", "-b", "1", "--iters", "1",
                 "--warmup", "0", "--compare", "timm", "--json", "--device", "cpu"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)["compare"]
    assert data["max_rel_diff"] < 1e-5 and data["ratio"] > 0


def test_gpu_flag_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code = main(["profile", "--gpu", "--model", "swin-nano"])
    assert code == 1 and "no CUDA GPU" in capsys.readouterr().err


def test_the_memory_figure_is_what_a_batch_adds_and_the_estimate_is_of_the_same(capsys):
    """Issue 18.6c: on a CPU the figure was the resident set's growth during the timed runs alone, 0 MiB once the
    warm-up had grown it; it is now the peak the batches add above the loaded weights, and so is the estimate."""
    args = ["profile", "--model", "swin-nano", "--size", "64", "--window", "4", "-b", "4", "--iters", "2", "--warmup",
            "1", "--device", "cpu", "--mode", "both"]  # fmt: skip
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["peak_memory_measured_by"] == "CPU resident set growth"
    for row in (data, data["train"], data["train_grad_checkpointing"]):
        assert 0 < row["peak_memory_bytes"] <= row["peak_memory_estimate_bytes"], row
    assert data["train"]["peak_memory_bytes"] > data["peak_memory_bytes"]  # gradients and AdamW state
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "peak memory added (estimate)" in out and "above the loaded weights, measured as CPU resident set" in out


def test_a_cpu_peak_counts_the_memory_the_work_allocated_and_freed():
    from swincli.memory import PeakMemory

    meter = PeakMemory("cpu")
    meter.begin()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    del block
    meter.end()
    assert 60 * 2**20 < meter.added < 200 * 2**20 and not meter.active
    with meter.paused():  # left out of the figure
        torch.ones(256 * 2**20 // 4).sum()
    assert meter.added < 200 * 2**20


def test_one_thread_reads_in_the_singular(capsys):
    """Issue 18.6g: "(1 threads)" in the device line."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["profile", "--model", "swin-nano", "--size", "32", "--window", "2", "-b", "1", "--iters", "1",
                     "--warmup", "0", "--device", "cpu", "--format", "json"]) == 0  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    device = json.loads(capsys.readouterr().out)["device"]
    assert device.endswith("(1 thread)"), device
