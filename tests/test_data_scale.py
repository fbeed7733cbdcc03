"""--data hf:... (Hugging Face datasets) and --data wds:... (webdataset shards): tiny CPU runs.

Every sample of these sets has its own label, so the labels the training loop receives name the
samples it was given: the tests record them (in-process, and per rank under torchrun through a
small launcher) and check that every sample comes exactly once an epoch.
"""

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swincli import load_model
from swincli.cli import main
from swincli.engine import trainer

SHARDS, PER_SHARD = 4, 16
N = SHARDS * PER_SHARD
TINY = ["--size", "32", "--window", "2", "-b", "8", "--aa", "none", "--mixup", "0", "--cutmix", "0", "--reprob", "0",
        "--seed", "3", "--quiet"]  # fmt: skip


def _png(rng, size=32) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((rng.random((size, size, 3)) * 255).astype("uint8")).save(buf, "PNG")
    return buf.getvalue()


def write_shards(root: Path, prefix: str = "train", shards: int = SHARDS, per=PER_SHARD, label=lambda n: n,
                 classes: list[str] | None = None) -> str:  # fmt: skip
    """``prefix-00000{0..3}.tar`` written by webdataset's TarWriter: samples KEY.png + KEY.cls (label n for
    the n-th sample); ``per`` may be a list (uneven shards). Returns the wds: pattern."""
    import webdataset

    root.mkdir(parents=True, exist_ok=True)
    rng, n = np.random.default_rng(len(prefix)), 0
    for s in range(shards):
        with webdataset.TarWriter(str(root / f"{prefix}-{s:06d}.tar")) as sink:
            for i in range(per[s] if isinstance(per, list) else per):
                sink.write({"__key__": f"{prefix}/s{s}_{i:04d}", "png": _png(rng), "cls": label(n)})
                n += 1
    if classes is not None:
        (root / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    return f"{root}/{prefix}-{{000000..{shards - 1:06d}}}.tar"


def write_hf(root: Path, n: int = N, val: int = 8, columns: str = "image") -> Path:
    """A DatasetDict (train + validation) written by save_to_disk; train label i = row i."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
    from datasets import Image as HFImage

    rng = np.random.default_rng(0)
    names = [f"c{i:02d}" for i in range(n)]

    def split(count: int) -> Dataset:
        images = [Image.fromarray((rng.random((32, 32, 3)) * 255).astype("uint8")) for _ in range(count)]
        if columns == "none":  # no Image feature: file names and string labels
            return Dataset.from_dict({"file": [f"{i}.png" for i in range(count)], "tag": [str(i) for i in range(count)]},
                                     features=Features({"file": Value("string"), "tag": Value("string")}))  # fmt: skip
        return Dataset.from_dict({"photo": images, "label": list(range(count))},
                                 features=Features({"photo": HFImage(), "label": ClassLabel(names=names)}))  # fmt: skip

    DatasetDict(train=split(n), validation=split(val)).save_to_disk(str(root))
    return root


class Recording:
    """Wraps the loader iterator the training loop reads: records the labels of every batch it receives."""

    def __init__(self, batches, seen: list) -> None:
        self.batches, self.seen = batches, seen

    def __next__(self):
        x, y, skipped = next(self.batches)
        self.seen.append(y.tolist())
        return x, y, skipped


@pytest.fixture
def record(monkeypatch):
    seen: list[list[int]] = []
    original = trainer._forward_backward
    monkeypatch.setattr(trainer, "_forward_backward", lambda run, batches, step: original(run, Recording(batches, seen), step))
    return seen


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("wds"))


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return write_hf(tmp_path_factory.mktemp("hf") / "ds")


def per_epoch(seen: list[list[int]], steps: int) -> list[Counter]:
    flat = [batch for batch in seen]
    return [Counter(label for batch in flat[e * steps : (e + 1) * steps] for label in batch) for e in range(len(flat) // steps)]


# ------------------------------------------------------------------ 1, 2: every sample once an epoch (2 workers)
def test_wds_trains_with_two_workers_and_sees_every_sample_once(shards, tmp_path, record, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", f"wds:{shards}", "--epochs", "1", "--workers", "2", "-o", str(out), *TINY]) == 0
    assert per_epoch(record, N // 8) == [Counter(range(N))]  # (later epochs: test_shard_sampler_...)
    for name in ("args.json", "metrics.jsonl", "last.safetensors", "best.safetensors", "resume.safetensors"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1] and rows[0]["val_acc1"] is None  # no validation shards given
    assert load_model(out / "best.safetensors").class_names == [str(i) for i in range(N)]


def test_hf_save_to_disk_trains_with_two_workers_sees_every_sample_once_and_evaluates(hf_dir, tmp_path, record, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", f"hf:{hf_dir}", "--epochs", "1", "--workers", "2", "-o", str(out), *TINY]) == 0
    assert per_epoch(record, N // 8) == [Counter(range(N))]
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert row["val_acc1"] is not None  # the validation split
    assert load_model(out / "best.safetensors").class_names == [f"c{i:02d}" for i in range(N)]
    capsys.readouterr()
    assert main(["eval", "-c", str(out / "best.safetensors"), "--data", f"hf:{hf_dir}", "--workers", "0",
                 "--format", "json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 8 and abs(result["loss"] - row["val_loss"]) < 1e-5


# ------------------------------------------------------------------ 3: torchrun, 2 processes (gloo)
LAUNCHER = """
import json, os, sys
from swincli.engine import trainer
seen = []
class Recording:
    def __init__(self, batches):
        self.batches = batches
    def __next__(self):
        x, y, skipped = next(self.batches)
        seen.append(y.tolist())
        return x, y, skipped
original = trainer._forward_backward
trainer._forward_backward = lambda run, batches, step: original(run, Recording(batches), step)
from swincli.cli import main
code = main(sys.argv[1:])
with open(os.environ["RECORD"] + "." + os.environ["RANK"], "w") as fh:
    json.dump(seen, fh)
sys.exit(code)
"""


def _torchrun(tmp_path: Path, data: str, workers: int, with_stderr: bool = False):
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-port", str(29500 + (os.getpid() + workers) % 1000),
           str(launcher), "train", "--data", data, "--epochs", "1", "--workers", str(workers), "-o", str(tmp_path / "run"),
           *TINY]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", RECORD=str(tmp_path / "seen"), HF_HUB_OFFLINE="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"seen.{rank}").read_text()) for rank in range(2)]
    return (ranks, proc.stdout + proc.stderr) if with_stderr else ranks


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_torchrun_wds_splits_the_shards_across_ranks_and_workers(shards, tmp_path):
    ranks = _torchrun(tmp_path, f"wds:{shards}", workers=2)
    assert [len(r) for r in ranks] == [N // 2 // 8] * 2  # the same number of steps on each rank
    per_rank = [Counter(label for batch in r for label in batch) for r in ranks]
    assert per_rank[0] + per_rank[1] == Counter(range(N)) and not set(per_rank[0]) & set(per_rank[1])
    # each rank reads whole shards: its labels fall in 2 of the 4 shards
    assert all(len({label // PER_SHARD for label in c}) == 2 for c in per_rank)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_torchrun_hf_covers_every_sample_once(hf_dir, tmp_path):
    ranks = _torchrun(tmp_path, f"hf:{hf_dir}", workers=1)
    per_rank = [Counter(label for batch in r for label in batch) for r in ranks]
    assert per_rank[0] + per_rank[1] == Counter(range(N))


# ------------------------------------------------------------------ 4: class names, swin eval
def test_wds_class_names_validation_and_eval(tmp_path, capsys):
    names = ["cat", "dog", "fox", "owl"]
    train = write_shards(tmp_path / "d", "train", shards=2, per=8, label=lambda n: n % 4, classes=names)
    val = write_shards(tmp_path / "d", "val", shards=1, per=8, label=lambda n: n % 4)
    out = tmp_path / "run"
    data = f"wds:{train}::{val}"
    assert main(["train", "--data", data, "--epochs", "1", "--workers", "0", "-o", str(out), *TINY]) == 0
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    model = load_model(out / "best.safetensors")
    assert model.class_names == names and row["val_acc1"] is not None
    capsys.readouterr()
    assert main(["eval", "-c", str(out / "best.safetensors"), "--data", data, "--workers", "0", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 8 and abs(result["acc1"] - row["val_acc1"]) < 1e-6


def test_hf_without_validation_split_holds_out_and_columns_can_be_named(tmp_path, capsys):
    from datasets import ClassLabel, Dataset, Features, Value
    from datasets import Image as HFImage

    rng = np.random.default_rng(1)
    images = [Image.fromarray((rng.random((32, 32, 3)) * 255).astype("uint8")) for _ in range(20)]
    ds = Dataset.from_dict({"a": images, "b": images, "y": [i % 2 for i in range(20)], "z": [0] * 20},
                           features=Features({"a": HFImage(), "b": HFImage(), "y": Value("int64"),
                                              "z": ClassLabel(names=["only"])}))  # fmt: skip
    ds.save_to_disk(str(tmp_path / "one"))
    out = tmp_path / "run"
    code = main(["train", "--data", f"hf:{tmp_path / 'one'}", "--image-column", "b", "--label-column", "y", "--epochs", "1",
                 "--max-steps", "1", "--workers", "0", "-o", str(out), *TINY[:-1]])  # fmt: skip
    printed = " ".join(capsys.readouterr().out.split())  # notes wrap at 120 columns, wherever the path ends
    assert code == 0 and "holding out 10%" in printed and "images from column 'b', labels from 'y'" in printed
    assert load_model(out / "best.safetensors").class_names == ["0", "1"]


# ------------------------------------------------------------------ 5: errors, one line each
def _error(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err and len([r for r in err.splitlines() if r.startswith("error:")]) == 1, err
    return code, err


def test_missing_datasets_package_is_one_line_with_the_install_hint(hf_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    code, err = _error(capsys, "train", "--data", f"hf:{hf_dir}", *TINY)
    assert code == 1 and "pip install 'swincli[data]'" in err


def test_missing_webdataset_package_is_one_line_with_the_install_hint(shards, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "webdataset", None)
    code, err = _error(capsys, "train", "--data", f"wds:{shards}", *TINY)
    assert code == 1 and "webdataset" in err and "pip install 'swincli[data]'" in err


def test_unknown_hf_dataset_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    code, err = _error(capsys, "train", "--data", "hf:nobody/no-such-dataset", *TINY)
    assert code == 1 and "nobody/no-such-dataset" in err and "offline" in err and "save_to_disk" in err


def test_hf_without_image_column_lists_the_columns(tmp_path, capsys):
    root = write_hf(tmp_path / "ds", n=4, val=2, columns="none")
    code, err = _error(capsys, "train", "--data", f"hf:{root}", *TINY)
    assert code == 1 and "no Image column" in err and "file (Value/string)" in err and "--image-column" in err
    code, err = _error(capsys, "train", "--data", f"hf:{root}", "--image-column", "file", "--label-column", "tag", *TINY)
    assert code == 2 and "--label-column tag is a Value/string column" in err and "class_encode_column" in err


def test_columns_without_hf_and_wds_patterns_without_files(shards, tmp_path, capsys):
    code, err = _error(capsys, "train", "--data", f"wds:{shards}", "--image-column", "x", *TINY)
    assert code == 2 and "--image-column applies to --data hf:" in err
    code, err = _error(capsys, "train", "--data", f"wds:{tmp_path}/none-{{000..003}}.tar", *TINY)
    assert code == 1 and "matches no file" in err
    code, err = _error(capsys, "train", "--data", f"wds:{shards.replace('000003', '000009')}", *TINY)
    assert code == 1 and "6 of the 10 shards" in err
    code, err = _error(capsys, "train", "--data", f"wds:{shards}", "--val-split", "0.2", *TINY)
    assert code == 2 and "::" in err
    (tmp_path / "bad.tar").write_bytes(b"not a tar" * 100)
    code, err = _error(capsys, "train", "--data", f"wds:{tmp_path}/bad.tar", *TINY)
    assert code == 1 and "cannot read shard" in err and "bad.tar" in err


# ------------------------------------------------------------------ 6: exact resume
def _weights(path: Path) -> dict:
    return {k: v.clone() for k, v in load_model(path).state_dict().items()}


def test_wds_resume_at_an_epoch_boundary_and_mid_epoch_is_bitwise_identical(tmp_path, monkeypatch, capsys):
    shards = write_shards(tmp_path / "shards", shards=2, per=8)  # 16 samples, batch 4: 4 steps an epoch
    # 2 workers, one shard each: the resumed run skips part of each worker's shard (the round-robin so far)
    args = ["--data", f"wds:{shards}", "--epochs", "2", "--workers", "2", *TINY, "-b", "4"]
    assert main(["train", "-o", str(tmp_path / "full"), *args]) == 0
    full = _weights(tmp_path / "full" / "last.safetensors")

    run = tmp_path / "run"
    assert main(["train", "-o", str(run), "--max-steps", "4", *args]) == 0  # stops after epoch 1 (4 steps)
    original = trainer._optimizer_step

    def stop_after_step_5(run, finite, global_step):
        if global_step == 4:
            run.stop.signal = "SIGTERM"  # what Ctrl-C does: the step finishes, the state is saved, exit 130
        return original(run, finite, global_step)

    monkeypatch.setattr(trainer, "_optimizer_step", stop_after_step_5)
    assert main(["train", "--resume", str(run), "--max-steps", "100", "--quiet"]) == 130  # resumed at the boundary
    monkeypatch.setattr(trainer, "_optimizer_step", original)
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 1
    assert main(["train", "--resume", str(run), "--quiet"]) == 0  # resumed mid-epoch 2, at step 1 of 4
    resumed = _weights(run / "last.safetensors")
    assert all(torch.equal(full[k], resumed[k]) for k in full)


# ------------------------------------------------------------------ the plan on its own (uneven shards)
def test_round_robin_and_worker_quotas():
    from swincli.datasets.wds_stream import round_robin_take, worker_quotas

    def simulate(lengths, taken):  # the DataLoader's order: round-robin in worker order, exhausted ones skipped
        got, left = [0] * len(lengths), taken
        while left:
            for w, n in enumerate(lengths):
                if left and got[w] < n:
                    got[w], left = got[w] + 1, left - 1
        return got

    for lengths in ([5, 5], [3, 9, 0, 4], [0, 7], [1, 1, 1]):
        for taken in range(sum(lengths) + 1):
            assert round_robin_take(lengths, taken) == simulate(lengths, taken), (lengths, taken)
    assert worker_quotas([10, 30], 40) == [10, 30]  # exactly one pass
    assert worker_quotas([10, 30], 24) == [10, 14]  # fewer: the bigger worker stops early
    assert worker_quotas([10, 30], 50) == [15, 35]  # more: a second pass, round-robin
    assert worker_quotas([0, 6], 8) == [0, 8]


def _plan(counts, world, quota, consumed=0, epoch=0):
    from swincli.datasets.wds_stream import _Plan, shard_order

    return _Plan([f"s{i}" for i in range(len(counts))], counts, shard_order(len(counts), 5, epoch), epoch, 5, 0, world,
                 quota, consumed, 10)  # fmt: skip


@pytest.mark.parametrize("counts,world,workers", [([16] * 4, 2, 2), ([16] * 8, 2, 3), ([5, 9, 16, 2, 7], 2, 2),
                                                  ([3, 40, 1], 3, 1), ([16] * 4, 1, 0)])  # fmt: skip
def test_the_plan_splits_shards_by_rank_and_worker(counts, world, workers):
    """Every rank takes the same quota; equal shards split evenly are exact; resume skips what was consumed."""
    from dataclasses import replace

    from swincli.datasets.wds_stream import ShardStream, round_robin_take

    stream = ShardStream([f"s{i}" for i in range(len(counts))], counts, sum(counts), 10)
    steps = stream.steps(2, 1, world)
    quota = steps * 2
    shards_seen = set()
    for rank in range(world):
        plan = replace(_plan(counts, world, quota), rank=rank)
        parts = [plan.worker(w, max(workers, 1)) for w in range(max(workers, 1))]
        assert sum(n for _, n, _ in parts) == quota  # the same number of samples on every rank
        positions = [p for pos, _, _ in parts for p in pos]
        assert len(set(positions)) == len(positions) == len(range(rank, len(counts), world))  # rank r: shards r::world
        shards_seen |= {plan.order[p] for p in positions}
        sizes = [sum(counts[plan.order[p]] for p in pos) for pos, _, _ in parts]
        if len(set(counts)) == 1 and len(counts) % world == 0:
            assert all(n <= size for size, (_, n, _) in zip(sizes, parts))  # no sample twice
        consumed = quota // 2  # resumed halfway: each worker skips its part of the round-robin so far
        resumed = [replace(plan, consumed=consumed).worker(w, max(workers, 1))[2] for w in range(max(workers, 1))]
        assert resumed == round_robin_take([n for _, n, _ in parts], consumed) and sum(resumed) == consumed
    assert shards_seen == set(range(len(counts)))  # every shard belongs to exactly one rank
    warned = stream.split_warnings(2, 1, world, workers)
    uneven = world > 1 and (len(set(counts)) > 1 or len(counts) % world)
    assert any("repeated or skipped" in w for w in warned) == bool(uneven)


def test_too_few_shards_for_the_ranks_is_one_clear_error():
    from swincli.datasets.wds_stream import ShardStream
    from swincli.errors import SwinError

    with pytest.raises(SwinError, match="cannot feed 4 ranks"):
        ShardStream(["a", "b", "c"], [4, 4, 4], 12, 2).steps(1, 1, 4)


# ------------------------------------------------------------------ streaming: pipe: URLs, --epoch-size, failures
def test_pipe_shards_stream_with_epoch_size(tmp_path, record, capsys):
    # no classes.txt for pipe: shards and no count: the classes come from the first shard's labels
    write_shards(tmp_path / "remote", label=lambda n: N - 1 - n)
    pattern = f"pipe:cat {tmp_path / 'remote'}/train-{{000000..000003}}.tar"
    out = tmp_path / "run"
    code = main(["train", "--data", f"wds:{pattern}", "--epoch-size", str(N), "--epochs", "1", "--workers", "2",
                 "-o", str(out), *TINY[:-1]])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "not counted: --epoch-size 64" in printed
    assert per_epoch(record, N // 8) == [Counter(range(N))]  # equal shards, 2 workers: still each sample once
    assert (out / "last.safetensors").is_file()


def test_epoch_size_needs_wds_and_a_broken_shard_mid_run_is_named(shards, tmp_path, capsys):
    code, err = _error(capsys, "train", "--epoch-size", "10", *TINY)
    assert code == 2 and "--epoch-size applies to --data wds:" in err
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = Path(shards).parent / "train-000000.tar"
    (folder / "a-0.tar").write_bytes(good.read_bytes())
    (folder / "a-1.tar").write_bytes(good.read_bytes()[:3000])  # cut short: fails when its turn comes
    code, err = _error(capsys, "train", "--data", f"wds:{folder}/a-{{0..1}}.tar", "--epoch-size", "64", "--epochs", "1",
                       "--workers", "0", "-o", str(tmp_path / "run"), *TINY)  # fmt: skip
    assert code == 1 and "cannot read shard" in err and "a-1.tar" in err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_torchrun_uneven_shards_warn_and_finish_with_equal_steps(tmp_path):
    shards = write_shards(tmp_path / "uneven", shards=5, per=[8, 24, 16, 8, 8])  # 64 samples, 5 shards
    ranks, stderr = _torchrun(tmp_path, f"wds:{shards}", workers=2, with_stderr=True)
    assert [len(r) for r in ranks] == [N // 2 // 8] * 2  # fixed step count on both ranks: no hang
    assert "up to" in stderr and "repeated or skipped" in stderr
