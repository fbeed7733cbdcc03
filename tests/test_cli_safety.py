"""Nothing a user owns is ever lost: --force replaces only our files, run directories are locked, outputs
are renamed into place complete (or not at all), with the umask's mode, and no temporary file outlives us.

Every check runs the real command and compares the user's files byte for byte (sha256) afterwards.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import plain_images, run_cli as run
from swincli.fileio import TEMP_MARK, temp_path

TINY = ["--size", "32", "--window", "2", "--workers", "0", "-b", "4", "--quiet", "--epochs", "1", "--max-steps", "1"]
HF_FILES = {"config.json", "model.safetensors", "preprocessor_config.json"}


def hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (hidden ones included), by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TEMP_MARK in p.name]


def one_line_error(err: str, *needles: str) -> bool:
    return err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err and all(n in err for n in needles)


@pytest.fixture(scope="module")
def small(tiny_checkpoint, tmp_path_factory) -> tuple[Path, Path]:
    """The 32 px checkpoint and a folder of five images for predict."""
    return tiny_checkpoint, plain_images(tmp_path_factory.mktemp("predict") / "imgs", 5)


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


# ------------------------------------------------------------------ convert
def test_convert_into_an_existing_folder_replaces_only_our_files(nano_checkpoint, tmp_path, capsys):
    victim = tmp_path / "victim"
    (victim / "chapters").mkdir(parents=True)
    (victim / "thesis.txt").write_text("four years of work\n")
    (victim / "chapters" / "one.tex").write_text("\\chapter{One}\n")
    (victim / "model.safetensors").write_bytes(b"an old export")
    before = hashes(victim)
    code, _, err = run(capsys, "convert", nano_checkpoint, "--to", "hf", "-o", victim, "--no-check")
    assert code == 1 and one_line_error(err, f"{victim} already exists", "--force")
    assert hashes(victim) == before

    assert run(capsys, "convert", nano_checkpoint, "--to", "hf", "-o", victim, "--no-check", "--force")[0] == 0
    after = hashes(victim)
    assert after["thesis.txt"] == before["thesis.txt"] and after["chapters/one.tex"] == before["chapters/one.tex"]
    assert set(after) == set(before) | HF_FILES and after["model.safetensors"] != before["model.safetensors"]
    assert json.loads((victim / "config.json").read_text())["model_type"] == "swin"
    assert temps(tmp_path) == []


def test_convert_into_the_working_directory_keeps_every_other_file(nano_checkpoint, tmp_path, capsys, monkeypatch):
    cwd = tmp_path / "work"
    (cwd / "src").mkdir(parents=True)
    (cwd / "notes.md").write_text("todo\n")
    (cwd / "src" / "main.py").write_text("print('hi')\n")
    monkeypatch.chdir(cwd)
    before = hashes(cwd)
    code, _, err = run(capsys, "convert", nano_checkpoint, "--to", "hf", "-o", ".", "--no-check")
    assert code == 1 and one_line_error(err, "already exists") and hashes(cwd) == before
    assert run(capsys, "convert", nano_checkpoint, "--to", "hf", "-o", ".", "--no-check", "--force")[0] == 0
    after = hashes(cwd)
    assert {k: after[k] for k in before} == before and set(after) - set(before) == HF_FILES
    assert temps(tmp_path) == []


def test_convert_targets_of_the_wrong_kind_are_one_line(nano_checkpoint, tmp_path, capsys):
    folder, file = tmp_path / "a-folder", tmp_path / "a-file"
    folder.mkdir()
    file.write_text("mine\n")
    for target, to, needle in ((folder, "swin", "is a folder"), (file, "hf", "is a file, not a folder")):
        code, _, err = run(capsys, "convert", nano_checkpoint, "--to", to, "-o", target, "--no-check", "--force")
        assert code == 1 and one_line_error(err, str(target), needle)
    assert file.read_text() == "mine\n" and list(folder.iterdir()) == []
    code, _, err = run(capsys, "convert", nano_checkpoint, "-o", file / "inside.safetensors")
    assert code == 1 and one_line_error(err, "cannot write", f"{file} is a file")


def test_an_unwritable_place_is_one_line(nano_checkpoint, tmp_path, capsys, monkeypatch):
    """A read-only file system (simulated: root may write anywhere, so permissions cannot be tested here)."""
    real = os.statvfs

    class ReadOnly:
        def __init__(self, st):
            self.f_flag = st.f_flag | os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda p: ReadOnly(real(p)))
    code, _, err = run(capsys, "convert", nano_checkpoint, "-o", tmp_path / "out.safetensors")
    assert code == 1 and one_line_error(err, f"cannot write {tmp_path / 'out.safetensors'}", "read-only file system")
    assert list(tmp_path.iterdir()) == []


def test_written_files_follow_the_umask_and_replaced_ones_keep_their_mode(nano_checkpoint, tmp_path, capsys, umask):
    umask(0o027)
    assert run(capsys, "convert", nano_checkpoint, "--to", "timm", "-o", tmp_path / "t.pth", "--no-check")[0] == 0
    assert run(capsys, "convert", nano_checkpoint, "--to", "hf", "-o", tmp_path / "hf", "--no-check")[0] == 0
    assert (tmp_path / "t.pth").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "hf").stat().st_mode & 0o777 == 0o750
    assert {(p.name, p.stat().st_mode & 0o777) for p in (tmp_path / "hf").iterdir()} == {(n, 0o640) for n in HF_FILES}
    umask(0o022)
    assert run(capsys, "convert", nano_checkpoint, "-o", tmp_path / "m.safetensors")[0] == 0
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644
    os.chmod(tmp_path / "t.pth", 0o600)  # the user's choice survives --force
    assert run(capsys, "convert", nano_checkpoint, "--to", "timm", "-o", tmp_path / "t.pth", "--no-check", "--force")[0] == 0
    assert (tmp_path / "t.pth").stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------------ predict
def test_predict_refuses_an_existing_output_and_replaces_it_whole(small, tmp_path, capsys):
    ck, imgs = small
    precious = tmp_path / "precious.csv"
    precious.write_text("my hand-labelled results\n")
    before = hashes(tmp_path)
    code, _, err = run(capsys, "predict", imgs, "-c", ck, "--format", "csv", "-o", precious, "--workers", "0")
    assert code == 1 and one_line_error(err, f"{precious} already exists", "--force") and hashes(tmp_path) == before
    assert run(capsys, "predict", imgs, "-c", ck, "--format", "csv", "-o", precious, "--workers", "0", "--force")[0] == 0
    lines = precious.read_text().splitlines()
    assert lines[0] == "path,rank,index,label,prob,error" and len(lines) == 1 + 5 * 3 and temps(tmp_path) == []


def test_ctrl_c_while_predicting_keeps_the_old_file(small, tmp_path, capsys, monkeypatch):
    import swincli.predict

    ck, imgs = small
    precious = tmp_path / "precious.csv"
    precious.write_text("my hand-labelled results\n")
    before = hashes(tmp_path)
    real = swincli.predict.predict

    def interrupted(*args, **kwargs):
        for i, result in enumerate(real(*args, **kwargs)):
            if i == 2:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(swincli.predict, "predict", interrupted)
    code, _, err = run(capsys, "predict", imgs, "-c", ck, "-o", precious, "--workers", "0", "-b", "1", "--force")
    assert code == 130 and "Traceback" not in err
    assert hashes(tmp_path) == before and temps(tmp_path) == []


def test_the_output_extension_picks_the_format(small, tmp_path, capsys):
    ck, imgs = small
    assert run(capsys, "predict", imgs, "-c", ck, "-o", tmp_path / "p.json", "--workers", "0", "-k", "1")[0] == 0
    rows = [json.loads(line) for line in (tmp_path / "p.json").read_text().splitlines()]
    assert len(rows) == 5 and all(len(r["top_k"]) == 1 for r in rows)
    assert run(capsys, "predict", imgs, "-c", ck, "-o", tmp_path / "p.csv", "--workers", "0", "-k", "1")[0] == 0
    assert (tmp_path / "p.csv").read_text().startswith("path,rank,index,label,prob,error\n")
    code, _, err = run(capsys, "predict", imgs, "-c", ck, "-o", tmp_path / "q.json", "--format", "csv", "--workers", "0")
    assert code == 2 and one_line_error(err, "--format csv contradicts", "q.json") and not (tmp_path / "q.json").exists()


def test_features_and_their_row_order_are_both_protected(small, tmp_path, capsys):
    ck, imgs = small
    emb = tmp_path / "emb.npy"
    assert run(capsys, "predict", imgs, "-c", ck, "--features", "-o", emb, "--workers", "0")[0] == 0
    names = Path(f"{emb}.paths.txt")
    assert len(names.read_text().splitlines()) == 5
    before = hashes(tmp_path)
    code, _, err = run(capsys, "predict", imgs, "-c", ck, "--features", "-o", emb, "--workers", "0")
    assert code == 1 and one_line_error(err, "already exists") and hashes(tmp_path) == before
    emb.unlink()  # the row-order file alone is also the user's
    code, _, err = run(capsys, "predict", imgs, "-c", ck, "--features", "-o", emb, "--workers", "0")
    assert code == 1 and one_line_error(err, f"{names} already exists") and not emb.exists()
    assert run(capsys, "predict", imgs, "-c", ck, "--features", "-o", emb, "--workers", "0", "-f")[0] == 0
    assert emb.exists() and temps(tmp_path) == []


# ------------------------------------------------------------------ train
def test_train_refuses_an_earlier_run_and_force_replaces_only_its_files(few_colours, tmp_path, capsys):
    out = tmp_path / "ft96"
    out.mkdir()
    for name, text in (("args.json", '{"model": "swin-nano"}\n'), ("metrics.jsonl", '{"epoch": 1}\n{"epoch": 2}\n'),
                       ("last.safetensors", "weights"), ("notes.txt", "why this run matters\n")):  # fmt: skip
        (out / name).write_text(text)
    before = hashes(out)
    code, _, err = run(capsys, "train", "--data", few_colours, "-o", out, "--model", "swinv2-nano", *TINY)
    assert code == 1 and one_line_error(err, f"{out} holds an earlier run", "--force", "--resume")
    assert hashes(out) == before
    code, _, err = run(capsys, "train", "--data", few_colours, "-o", out, "--model", "swinv2-nano", "--force", *TINY)
    assert code == 0, err
    after = hashes(out)
    assert after["notes.txt"] == before["notes.txt"] and after["last.safetensors"] != before["last.safetensors"]
    assert json.loads((out / "args.json").read_text())["model"] == "swinv2-nano"
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    assert temps(tmp_path) == []


def test_a_run_directory_in_use_is_refused_with_one_line(few_colours, tmp_path, capsys):
    from swincli.engine.run.directory import RunLock

    out = tmp_path / "busy"
    out.mkdir()
    lock = RunLock(out).acquire()  # as another `swin train -o busy` would hold it
    try:
        code, _, err = run(capsys, "train", "--data", few_colours, "-o", out, *TINY)
        assert code == 1 and one_line_error(err, f"{out} is in use by another run", f"pid {os.getpid()}")
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    finally:
        lock.release()


def test_numbered_run_directories_are_claimed_atomically(tmp_path):
    """Two runs that both see exp2 free: each mkdir succeeds for one name only."""
    from swincli.engine.run.directory import claim_run_dir

    (tmp_path / "exp").mkdir()
    claimed = [claim_run_dir(tmp_path) for _ in range(3)]
    assert [p.name for p in claimed] == ["exp2", "exp3", "exp4"]


# ------------------------------------------------------------------ temporary files
def test_a_stale_temporary_file_of_a_dead_process_is_removed_by_the_next_write(small, tmp_path, capsys):
    ck, imgs = small
    target = tmp_path / "p.csv"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ours = temp_path(target).name
    stale = tmp_path / ours.replace(f"-{os.getpid()}-", f"-{dead.pid}-")
    alive = tmp_path / ours.replace(f"-{os.getpid()}-", f"-{os.getppid()}-")  # someone else's live write
    not_ours = tmp_path / f".p.csv{TEMP_MARK}my-own-file"
    other_target = tmp_path / stale.name.replace(".p.csv", ".q.csv")
    for p in (stale, alive, not_ours, other_target):
        p.write_text("partial")
    assert run(capsys, "predict", imgs, "-c", ck, "-o", target, "--workers", "0")[0] == 0
    assert not stale.exists() and alive.exists() and not_ours.exists() and other_target.exists()


WRITER = textwrap.dedent("""
    import sys, time
    from swincli.fileio import atomic_dir, atomic_file
    kind, target = sys.argv[1], sys.argv[2]
    with (atomic_file(target) if kind == "file" else atomic_dir(target)) as tmp:
        (tmp if kind == "file" else tmp / "model.safetensors").write_text("half of it")
        print("writing", flush=True)
        time.sleep(60)
""")


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_sigterm_while_writing_leaves_no_temporary_file_and_sigkill_one_the_next_write_removes(tmp_path, kind):
    target = tmp_path / ("out.pth" if kind == "file" else "hf-out")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(target)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "writing\n"
        assert len(temps(tmp_path)) == 1
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == -sig  # it still dies of the signal
        assert not target.exists()
        assert len(temps(tmp_path)) == (0 if sig == signal.SIGTERM else 1)
    from swincli.fileio import atomic_dir, atomic_file

    with atomic_file(target) if kind == "file" else atomic_dir(target) as tmp:
        (tmp if kind == "file" else tmp / "config.json").write_text("{}")
    assert temps(tmp_path) == [] and target.exists()


def test_a_killed_run_s_forked_workers_do_not_keep_its_lock(tmp_path):
    """Loader workers are forked while the lock is held; once the run is killed, a resume must get in."""
    import signal
    import subprocess
    import sys
    import time

    from swincli.engine.run.directory import RunLock

    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from swincli.engine.run.directory import RunLock\n"
        "RunLock(Path(sys.argv[1])).acquire()\n"
        "if os.fork() == 0:\n"
        "    time.sleep(30); os._exit(0)\n"  # a worker that outlives its parent for a while
        "print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)
    RunLock(tmp_path).acquire().release()  # the orphaned child holds nothing
