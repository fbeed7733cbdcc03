"""Rough edges a new user hit (issue 18, points 6f and 6g): silent failures, notes before an error,
grammar, and help texts that named the wrong default. Each runs the real CLI entry point."""

import json

from helpers import TINY, plain_images, run_cli


def test_predict_to_a_file_says_how_many_failed_and_why(tiny_checkpoint, tmp_path, capsys):
    images = plain_images(tmp_path / "imgs", count=3)
    (images / "broken.png").write_bytes(b"not a png at all")
    out = tmp_path / "preds.csv"
    code, stdout, err = run_cli(capsys, "predict", images, "-c", tiny_checkpoint, "-o", out, "-j", "0")
    assert code == 1 and out.exists()
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 4 images failed; the first: ") and "broken.png" in last, err
    assert "not an image" in last


def test_predict_to_the_terminal_ends_with_the_same_summary(tiny_checkpoint, tmp_path, capsys):
    images = plain_images(tmp_path / "imgs", count=2)
    (images / "empty.png").write_bytes(b"")
    code, stdout, err = run_cli(capsys, "predict", images, "-c", tiny_checkpoint, "--format", "json", "-j", "0")
    assert code == 1 and len(stdout.splitlines()) == 3
    assert err.strip().splitlines()[-1].startswith("error: 1 of 3 images failed; the first: "), err
    assert "empty file" in err


def test_a_run_of_one_epoch_reads_in_the_singular(few_colours, tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--data", few_colours, "-o", tmp_path / "run", "--epochs", "1",
                             *[a for a in TINY if a != "--quiet"])  # fmt: skip
    assert code == 0, err
    text = out + err
    assert "1 epoch x " in text and "1 epochs" not in text, text


def test_a_small_model_never_shows_zero_gmacs(capsys):
    code, out, _ = run_cli(capsys, "models", "info", "swin-nano", "--size", "32", "--window", "2")
    assert code == 0
    assert "0.0 GMACs" not in out and "0.00 " not in out
    macs = json.loads(run_cli(capsys, "models", "info", "swin-nano", "--size", "32", "--window", "2", "--format", "json")[1])["macs"]
    assert f"{macs / 1e9:.2g} GMACs" in out


def test_help_never_calls_the_default_recipe_the_official_one(capsys):
    for command in ("train", "finetune"):
        code, out, _ = run_cli(capsys, command, "--help")
        assert code == 0
        assert "with the official recipe" not in out and "official recipe." not in out, out
    code, out, _ = run_cli(capsys, "--help")
    assert "official recipe" not in out


def test_finetune_without_published_weights_fails_before_any_note(few_colours, tmp_path, capsys):
    code, out, err = run_cli(capsys, "finetune", "--model", "swinv2-nano", "--data", few_colours, "-o", tmp_path / "ft",
                             "--max-steps", "1")  # fmt: skip
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and "has no published weights" in err, err
    assert "note:" not in out + err, out + err
