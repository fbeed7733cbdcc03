"""--memory-budget, --attn-chunk-stages and ``swin profile --memory``: the memory tricks from the command line."""

from __future__ import annotations

import json

import pytest

from helpers import make_folder, run_cli
from swincli import create_model
from swincli.memory import estimate
from swincli.memory_plan import choose

# 256 px at window 16: a 64x64 stage-1 map of 16 windows of 256 tokens, where the tricks matter
BIG = ["--model", "swinv2-nano", "--size", "256", "--window", "16", "--workers", "0", "-b", "2", "--epochs", "1",
       "--max-steps", "1"]  # fmt: skip


def test_the_plan_is_the_cheapest_that_fits():
    config = create_model("swinv2-nano", img_size=256, window_size=16).config
    plain = estimate(config, 2, train=True).total
    assert choose(config, 2, plain)[0].name == "no memory trick"
    plan, _ = choose(config, 2, plain - 1)
    assert plan is not None and plan.name != "no memory trick" and plan.estimate.total < plain
    tight, smallest = choose(config, 2, 1)
    assert tight is None and smallest.grad_checkpointing and smallest.attn_chunk


def test_memory_budget_picks_a_plan_says_so_and_trains_with_it(capsys, tmp_path):
    # this run's plain step is estimated at about 440 MiB and its leanest plan at about 330 MiB (3 classes)
    data = make_folder(tmp_path / "data", per_class=2)  # a few images: one step and a short validation
    code, out, err = run_cli(capsys, "train", *BIG, "--data", data, "--memory-budget", "400MiB", "-o", tmp_path / "run")
    assert code == 0, err
    note = next(line for line in out.splitlines() if "--memory-budget 400 MiB" in line)
    args = json.loads((tmp_path / "run" / "args.json").read_text())
    assert args["grad_checkpointing"] or args["attn_chunk"]
    flag = "--grad-checkpointing" if args["grad_checkpointing"] else f"--attn-chunk {args['attn_chunk']}"
    assert flag in note and "an estimated" in note
    estimated = float(note.split("an estimated ")[1].split(" MiB")[0])
    assert estimated <= 400


def test_memory_budget_that_nothing_fits_is_one_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", *BIG, "--memory-budget", "10MiB", "-o", tmp_path / "run")
    last = err.strip().splitlines()[-1]
    assert code == 1 and last.startswith("error: nothing fits --memory-budget 10 MiB at batch 2, 256x256 px")
    assert "--grad-checkpointing --attn-chunk" in last and "hint:" in last and not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags,says", [
    (["--memory-budget", "lots"], "--memory-budget must be a size like 8GiB"),
    (["--attn-chunk-stages", "1,2"], "--attn-chunk-stages needs --attn-chunk N"),
    (["--attn-chunk", "2", "--attn-chunk-stages", "first"], "takes stage numbers like 1,2 or all"),
    (["--attn-chunk", "2", "--attn-chunk-stages", "1,5"], "must name stages among 1..4"),
])  # fmt: skip
def test_bad_memory_flags_are_one_line(flags, says, capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", *BIG, *flags, "-o", tmp_path / "run")
    last = err.strip().splitlines()[-1]
    assert code in (1, 2) and last.startswith("error:") and says in last, err
    assert "Traceback" not in err


def test_profile_memory_table(capsys):
    args = ["profile", "--model", "swinv2-nano", "--size", "128", "--window", "8", "-b", "1", "--iters", "1",
            "--warmup", "0", "--device", "cpu", "--memory"]  # fmt: skip
    code, out, err = run_cli(capsys, *args, "--mode", "both", "--format", "json", "--attn-chunk", "2")
    assert code == 0, err
    tables = json.loads(out)["memory"]
    assert [t["mode"] for t in tables] == ["inference", "train"]
    assert [r["trick"] for r in tables[1]["rows"]] == ["plain", "checkpointing", "sequential attention", "both"]
    assert [r["trick"] for r in tables[0]["rows"]] == ["plain", "sequential attention"]
    assert tables[1]["attn_chunk"] == 2 and tables[1]["attn_chunk_stages"] == [1, 2]
    for row in tables[1]["rows"]:
        assert row["step_ms"] > 0 and row["estimate_bytes"] > 0 and row["time_ratio"] > 0
    code, out, err = run_cli(capsys, *args, "--mode", "train")
    assert code == 0 and "Memory tricks, one training step" in out and "sequential attention" in out


def test_profile_chunk_flags_need_memory(capsys):
    code, out, err = run_cli(capsys, "profile", "--model", "swinv2-nano", "--iters", "0", "--attn-chunk", "2")
    assert code == 2 and "go with --memory" in err.strip().splitlines()[-1]
