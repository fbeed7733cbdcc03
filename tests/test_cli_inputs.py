"""Inputs users actually have (issue 12): class names that look like markup, class folders that do not match
the checkpoint, FIFOs named like images, URLs, an unreachable or wrong Hub, and one meaning per model alias."""

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import run_cli as run
from swincli import create_model, save_model

MARKUP = ["[misc]", "dogs [v2]", "[/red]", "[bold]x"]
FOLDER_SAFE = ["[misc]", "dogs [v2]", "[red]", "[bold]x"]  # "/" cannot be in a folder name
SWIN = str(Path(sys.executable).parent / "swin")
ROOT = Path(__file__).resolve().parents[1]


def checkpoint(path: Path, names: list[str] | None, favour: int = 0, num_classes: int | None = None) -> Path:
    """A tiny model that predicts output ``favour`` for every image (so accuracy says how labels were mapped)."""
    model = create_model("swin-nano", num_classes=num_classes or len(names), img_size=32, window_size=4)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[favour] = 5.0
    save_model(model, path, class_names=names)
    return path


def image(path: Path, colour=(200, 40, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), colour).save(path)
    return path


def folder(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        for i in range(n):
            image(root / name / f"{i}.png", (20 * i, 90, 40))
    return root


# ----------------------------------------------------------------------------------------- markup in names
def test_class_names_that_look_like_markup_print_verbatim_in_every_predict_format(tmp_path, capsys):
    ck = checkpoint(tmp_path / "m [v1].safetensors", MARKUP)
    img = image(tmp_path / "[cat].png")
    for fmt in ("table", "csv", "json"):
        code, out, err = run(capsys, "predict", img, "-c", ck, "--top-k", 4, "--workers", 0, "--format", fmt)
        assert code == 0, err
        assert "unexpected" not in err and "Traceback" not in err
        for name in MARKUP + ["[cat].png"]:
            assert name in out, (fmt, name, out)


def test_eval_per_class_prints_class_names_verbatim(tmp_path, capsys):
    ck = checkpoint(tmp_path / "m.safetensors", FOLDER_SAFE)
    data = folder(tmp_path / "data", {name: 1 for name in FOLDER_SAFE})
    code, out, err = run(capsys, "eval", "-c", ck, "-d", data, "--per-class", "--workers", 0)
    assert code == 0, err
    rows = [line for line in out.splitlines() if "│" in line]
    for name in FOLDER_SAFE:
        assert any(f"│ {name} " in row for row in rows), (name, out)


def test_train_notes_warnings_and_summary_print_user_strings_verbatim(tmp_path, capsys):
    from swincli.cli.train_progress import TrainReporter
    from swincli.engine.trainer import TrainResult

    reporter = TrainReporter()
    reporter.start({"model": "[bold]m", "train_images": 8, "classes": 2, "val_images": 2, "epochs": 1,
                    "steps_per_epoch": 2, "device": "cpu", "world_size": 1})  # fmt: skip
    reporter.note("val has classes not in train (ignored): [misc], dogs [v2]")
    reporter.warn("skipped 1 image(s): [/red].png")
    reporter.finish(TrainResult(run_dir=tmp_path / "run [1]", best_acc1=None, last={}, epochs=1))
    out, err = capsys.readouterr()
    assert "training [bold]m on" in out and "[misc], dogs [v2]" in out and "[/red].png" in err
    assert f"results saved to {tmp_path / 'run [1]'}" in out


# ----------------------------------------------------------------------------------------- eval classes
def test_eval_maps_class_folders_by_name_not_by_order(tmp_path, capsys):
    ck = checkpoint(tmp_path / "m.safetensors", ["b", "a"], favour=0)  # always predicts "b"
    data = folder(tmp_path / "data", {"a": 1, "b": 3})  # sorted folders: a=0, b=1
    code, out, err = run(capsys, "eval", "-c", ck, "-d", data, "--format", "json", "--workers", 0)
    assert code == 0, err
    assert json.loads(out)["acc1"] == pytest.approx(75.0) and "note" not in err


def test_eval_refuses_classes_the_checkpoint_does_not_know_and_remap_scores_the_shared_ones(tmp_path, capsys):
    ck = checkpoint(tmp_path / "m.safetensors", ["cat", "dog", "fox"], favour=1)
    data = folder(tmp_path / "data", {"dog": 2, "cat": 1, "owl": 4})
    code, out, err = run(capsys, "eval", "-c", ck, "-d", data, "--workers", 0)
    assert code == 1 and err.count("\n") == 1 and "has no readable images" not in err
    assert "only: owl" in err and "checkpoint only: fox" in err and "--remap" in err
    code, out, err = run(capsys, "eval", "-c", ck, "-d", data, "--workers", 0, "--format", "json", "--remap")
    assert code == 0, err
    result = json.loads(out)
    assert result["images"] == 3 and result["acc1"] == pytest.approx(200 / 3)  # owl's 4 images are not scored
    assert "owl" in err and "fox" in err and "skipped" in err
    # nothing in common: refused even with --remap, naming both sides
    code, _, err = run(capsys, "eval", "-c", ck, "-d", folder(tmp_path / "other", {"owl": 1}), "--remap", "--workers", 0)
    assert code == 1 and "no class of" in err and "owl" in err and "cat" in err


def test_eval_lists_are_truncated(tmp_path, capsys):
    ck = checkpoint(tmp_path / "m.safetensors", [f"c{i:03d}" for i in range(40)])
    data = folder(tmp_path / "data", {"c000": 1, "zebra": 1})
    code, _, err = run(capsys, "eval", "-c", ck, "-d", data, "--workers", 0)
    assert code == 1 and "(+34 more)" in err and len(err) < 400


def test_eval_without_class_names_maps_by_position_only_when_counts_agree(tmp_path, capsys):
    ck = checkpoint(tmp_path / "m.safetensors", None, favour=1, num_classes=2)
    code, out, err = run(capsys, "eval", "-c", ck, "-d", folder(tmp_path / "two", {"x": 1, "y": 3}), "--format", "json",
                         "--workers", 0)  # fmt: skip
    assert code == 0 and json.loads(out)["acc1"] == pytest.approx(75.0)
    assert "no class names" in err and "x, y" in err
    code, _, err = run(capsys, "eval", "-c", ck, "-d", folder(tmp_path / "three", {"x": 1, "y": 1, "z": 1}), "--remap",
                       "--workers", 0)  # fmt: skip
    assert code == 1 and "3 classes" in err and "2 outputs" in err


# ----------------------------------------------------------------------------------------- FIFOs
def within(seconds: float, fn):
    """``fn()``'s result, failing (not hanging) if it takes longer: a blocked open() cannot be interrupted."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"still running after {seconds} s: something opened a FIFO"
    return result[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_an_image_is_an_error_line_never_opened(tmp_path, capsys):
    ck = checkpoint(tmp_path / "m.safetensors", ["a", "b"])
    real = image(tmp_path / "real.png")
    os.mkfifo(tmp_path / "x.png")
    data = folder(tmp_path / "data", {"a": 1, "b": 1})
    os.mkfifo(data / "a" / "pipe.png")
    args = ["predict", tmp_path / "x.png", real, data, "-c", ck, "--format", "json", "--workers", 0]
    code, out, err = within(60, lambda: run(capsys, *args))
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.splitlines())}
    assert code == 1, err
    assert rows["x.png"]["error"] == "not a regular file" and rows["pipe.png"]["error"] == "not a regular file"
    assert "top_k" in rows["real.png"] and "top_k" in rows["0.png"]
    code, out, err = within(60, lambda: run(capsys, "eval", "-c", ck, "-d", data, "--workers", 0))
    assert code == 0 and "pipe.png (not a regular file)" in err


# ----------------------------------------------------------------------------------------- URLs
class _Server:
    """A local HTTP server in a thread: ``files`` maps a URL path to bytes, anything else is a 404 (with the
    header the Hub sends for a missing repository)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, body: bool) -> None:
                data = files.get(self.path)
                self.send_response(200 if data is not None else 404)
                if data is None:
                    self.send_header("X-Error-Code", "RepoNotFound")
                data = data or b"not found"
                if not self.path.startswith("/stream"):  # /stream*: no length, the body ends with the connection
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._reply(True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._reply(False)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_urls_are_downloaded_once_cached_and_reported_by_url(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SWIN_CACHE", str(tmp_path / "cache"))
    ck = checkpoint(tmp_path / "m.safetensors", ["a", "b"])
    server = _Server({"/img/cat.png": image(tmp_path / "cat.png").read_bytes(), "/text.png": b"hello"})
    good, missing, text = f"{server.url}/img/cat.png", f"{server.url}/nope.jpg", f"{server.url}/text.png"
    unreachable = f"http://127.0.0.1:{closed_port()}/x.png"
    try:
        code, out, err = run(capsys, "predict", good, missing, text, unreachable, "-c", ck, "--format", "json",
                             "--workers", 0)  # fmt: skip
    finally:
        server.close()
    rows = {r["path"]: r for r in map(json.loads, out.splitlines())}
    assert code == 1 and set(rows) == {good, missing, text, unreachable}
    assert "top_k" in rows[good]
    assert rows[missing]["error"] == "download failed: HTTP 404 Not Found"
    assert rows[text]["error"] == "not an image (unrecognised format)"
    assert rows[unreachable]["error"].startswith("cannot reach 127.0.0.1:")
    cached = list((tmp_path / "cache" / "downloads").iterdir())
    assert len(cached) == 2 and {p.suffix for p in cached} == {".png"}  # no partial file for the failures
    code, out, _ = run(capsys, "predict", good, "-c", ck, "--format", "json", "--workers", 0)  # server gone: cache
    assert code == 0 and json.loads(out)["path"] == good


def test_url_downloads_have_a_size_cap(tmp_path, monkeypatch):
    from swincli.fetch import FetchError, fetch

    monkeypatch.setenv("SWIN_CACHE", str(tmp_path))
    server = _Server({"/big.png": b"x" * 5000, "/stream.png": b"x" * 5000})
    try:
        for path in ("/big.png", "/stream.png"):  # declared too large / found too large while reading
            with pytest.raises(FetchError, match="larger than"):
                fetch(f"{server.url}{path}", max_bytes=1000)
    finally:
        server.close()
    assert not (tmp_path / "downloads").exists() or not any((tmp_path / "downloads").iterdir())


# ----------------------------------------------------------------------------------------- the Hub
def _hub_env(tmp_path: Path, endpoint: str) -> dict:
    return {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
            "SWIN_CACHE": str(tmp_path / "cache")}  # fmt: skip


@pytest.mark.slow  # a subprocess timed against a bound: needs a machine that is not loaded
def test_unreachable_hub_fails_in_seconds_with_its_own_message(tmp_path):
    img = image(tmp_path / "x.png")
    start = time.monotonic()
    proc = subprocess.run([SWIN, "predict", str(img), "--model", "swin-t"], capture_output=True, text=True, timeout=120,
                          env=_hub_env(tmp_path, f"http://127.0.0.1:{closed_port()}"))  # fmt: skip
    elapsed = time.monotonic() - start
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot reach the Hugging Face Hub" in proc.stderr and "downloads are off" not in proc.stderr
    assert "HF_HUB_OFFLINE=1" in proc.stderr  # the hint
    assert elapsed < 25, elapsed  # huggingface_hub alone retries for ~31 s


def test_unreachable_probe_is_quick_in_process(tmp_path, monkeypatch):
    from swincli import hub
    from swincli.errors import SwinError

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    start = time.monotonic()
    with pytest.raises(SwinError, match="cannot reach the Hugging Face Hub"):
        hub.download(*hub.resolve_weights("swin-t"), offline=False, progress=False)
    assert time.monotonic() - start < 5


def test_a_repository_the_hub_does_not_have_is_not_found(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from swincli import hub
    from swincli.errors import SwinError

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read at import; conftest set it
    for name, value in _hub_env(tmp_path, "").items():
        monkeypatch.setenv(name, value)
    server = _Server({})
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    try:
        with pytest.raises(SwinError, match="was not found on the Hub") as info:
            hub.download(*hub.resolve_weights("swin-t"), offline=False, progress=False)
    finally:
        server.close()
    assert "timm/swin_tiny_patch4_window7_224.ms_in1k" in info.value.message


def test_offline_is_its_own_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("SWIN_CACHE", str(tmp_path / "cache"))
    code, _, err = run(capsys, "predict", image(tmp_path / "x.png"), "--model", "swin-t", "--offline")
    assert code == 1 and "downloads are off (HF_HUB_OFFLINE=1 / --offline)" in err and "cannot reach" not in err


# ----------------------------------------------------------------------------------------- aliases
def _documented_aliases() -> dict[str, str]:
    """``alias`` -> ``arch.tag`` pairs written as "`alias` → `arch.tag`" in docs/predict.md."""
    text = (ROOT / "docs" / "predict.md").read_text()
    return dict(re.findall(r"`([a-z0-9-]+)` →\s+`([a-z0-9_]+\.[a-z0-9_]+)`", text))


def test_every_alias_means_one_model_in_info_predict_train_and_docs(capsys):
    from swincli.hub import resolve_weights
    from swincli.models.registry import aliases, get_entry

    documented = _documented_aliases()
    assert len(documented) >= 2
    for alias, canonical in aliases().items():
        code, out, _ = run(capsys, "models", "info", alias, "--json")
        info = json.loads(out)
        assert code == 0 and info["name"] == canonical == get_entry(alias).name  # what create_model/train build
        try:
            entry, weights = resolve_weights(alias)
        except Exception:  # noqa: BLE001 - no published weights: info says so too
            assert info["loads"] is None and not info["weights"]
            continue
        assert info["loads"] == f"{entry.name}.{weights.tag}" and entry.name == canonical  # what predict loads
        assert documented.get(alias, info["loads"]) == info["loads"], alias
    code, out, _ = run(capsys, "models", "info", "swinv2-b")
    assert "--model swinv2-b loads swinv2_base_window8_256.ms_in1k: 256 px, window 8" in out
