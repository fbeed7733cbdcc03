"""The ``auto`` recipe: values chosen from the data, each named with its flag, flags never overridden."""

import json

import pytest
from helpers import TINY, make_folder, run_cli, save_tiny

from swincli.cli import main
from swincli.engine.recipes.auto import LARGE, DataStats
from swincli.engine.recipes.fixed import RECIPES
from swincli.engine.recipes.resolve import resolve
from swincli.engine.train_config import TrainConfig

DIGITS = DataStats(images=1442, classes=10, side=64, finetune=False)


def test_small_data_from_scratch_gets_the_measured_values_and_a_note_naming_each_flag():
    cfg = resolve(TrainConfig(data="d", size=64, window=4, epochs=25, batch_size=64, mixup=0, cutmix=0), stats=DIGITS)
    assert cfg.recipe == "auto" and cfg.lr == pytest.approx(1e-3) and cfg.warmup_epochs == 2.5
    assert cfg.crop_scale == 0.6 and cfg.aa == "none" and cfg.reprob == 0.0 and cfg.drop_path == 0.1
    note = cfg.notes[0]
    assert note.startswith("recipe auto (1,442 images, 10 classes, 64 px, from scratch):")
    for flag in ("--lr", "--warmup-epochs", "--crop-scale", "--aa", "--reprob", "--drop-path"):
        assert f"({flag})" in note
    for given in ("--epochs", "--mixup", "--cutmix"):  # the user's own values are not "chosen"
        assert f"({given})" not in note


def test_flags_win_and_lr_scales_with_the_square_root_of_the_total_batch():
    cfg = resolve(TrainConfig(data="d", batch_size=256, aa="rand-m9-mstd0.5-inc1", crop_scale=0.08), stats=DIGITS)
    assert cfg.lr == pytest.approx(2e-3) and cfg.aa == "rand-m9-mstd0.5-inc1" and cfg.crop_scale == 0.08
    assert cfg.epochs == 50  # small data, no --epochs
    cfg = resolve(TrainConfig(data="d", batch_size=32, accum_steps=2), world_size=4, stats=DIGITS)
    assert cfg.lr == pytest.approx(1e-3 * 2)  # total batch 256


def test_the_crop_grows_as_the_images_shrink():
    sides = {side: resolve(TrainConfig(data="d"), stats=DataStats(1000, 5, side, False)).crop_scale for side in (32, 64, 144, 224, 384)}
    assert sides == {32: 0.6, 64: 0.6, 144: 0.34, 224: 0.08, 384: 0.08}


def test_fine_tuning_takes_small_batches_layer_decay_and_gentle_crops():
    """The fine-tuning branch (docs/training.md has the runs): an epoch of at least 200 steps at a batch of 8
    to 64, 5e-4 at batch 8 (x sqrt(batch / 8)) with layer decay 0.8, crops of at least 75% of the area."""
    tune = lambda images, **kw: resolve(TrainConfig(data="d", model="swin-nano", **kw), finetune=True,
                                        stats=DataStats(images, 5, 224, True, lora="lora" in kw))  # fmt: skip
    assert [tune(n).batch_size for n in (1_000, 5_000, 10_000, 19_999)] == [8, 16, 32, 64]
    cfg = tune(5_000)
    assert cfg.lr == pytest.approx(5e-4 * 2**0.5) and cfg.layer_decay == 0.8 and cfg.crop_scale == 0.75
    assert cfg.epochs == 30 and cfg.drop_path == 0.1 and cfg.smoothing == 0.1
    note = cfg.notes[0]
    assert "fine-tuning" in note and "batch size 16 (--batch-size)" in note and "layer decay 0.8 (--layer-decay)" in note
    given = tune(5_000, batch_size=64, layer_decay=0.9, crop_scale=0.3)
    assert (given.batch_size, given.layer_decay, given.crop_scale) == (64, 0.9, 0.3) and given.lr == pytest.approx(5e-4 * 8**0.5)
    assert cfg.ema is None  # measured: an EMA ended no higher (docs/training.md)
    lora = tune(5_000, lora=8)  # adapters keep the values their 10x rate was measured on
    assert (lora.batch_size, lora.lr, lora.layer_decay, lora.crop_scale) == (64, pytest.approx(3e-4), None, 0.08)


def test_imagenet_scale_gets_the_official_recipe():
    cfg = resolve(TrainConfig(data="d"), stats=DataStats(LARGE, 1000, 224, False))
    official = RECIPES["official"]
    assert cfg.epochs == 300 and cfg.batch_size == 128 and cfg.lr == pytest.approx(official["lr"] * 128 / 512)
    assert (cfg.aa, cfg.reprob, cfg.mixup, cfg.cutmix, cfg.crop_scale) == ("rand-m9-mstd0.5-inc1", 0.25, 0.8, 1.0, 0.08)
    assert "ImageNet scale" in cfg.notes[0]


def test_explicit_recipes_still_apply():
    cfg = resolve(TrainConfig(data="d", recipe="official", batch_size=64), stats=DIGITS)
    assert cfg.lr == pytest.approx(5e-4 * 64 / 512) and cfg.crop_scale == 0.08
    cfg = resolve(TrainConfig())  # no --data: the demo
    assert cfg.recipe == "demo" and cfg.crop_scale == 1.0


def test_the_cli_counts_the_data_prints_the_choice_and_saves_it(tmp_path, capsys):
    data = make_folder(tmp_path / "data", per_class=6)
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--epochs", "1", "--max-steps", "1", "-o", str(out), *TINY[:-1]]) == 0
    printed = capsys.readouterr()
    text = " ".join((printed.out + printed.err).split())
    assert "recipe auto (18 images, 3 classes, 32 px, from scratch)" in text and "(--crop-scale)" in text
    args = json.loads((out / "args.json").read_text())
    assert args["recipe"] == "auto" and args["crop_scale"] == 0.6 and args["lr"] == pytest.approx(1e-3 * 0.25)


def test_crop_scale_is_checked_like_every_option(capsys):
    assert main(["train", "--crop-scale", "0"]) == 2
    assert "--crop-scale" in capsys.readouterr().err


def test_fine_tuning_our_checkpoint_reads_its_side_from_the_header(tmp_path):
    from swincli import create_model, save_model
    from swincli.engine.run.settings import default_side

    ck = save_model(create_model("swin-nano", num_classes=3, img_size=48, window_size=3), tmp_path / "m.safetensors")
    assert default_side(TrainConfig(checkpoint=str(ck))) == 48
    assert default_side(TrainConfig(model="swinv2-t")) == 256 and default_side(TrainConfig()) == 224
    assert default_side(TrainConfig(checkpoint=str(tmp_path / "x.pth"))) == 224  # other layouts: read later


def _notes(capsys) -> str:
    printed = capsys.readouterr()
    return " ".join((printed.out + printed.err).split())


def test_from_scratch_trains_at_the_images_size_with_a_window_that_fits(tmp_path, capsys):
    """Issue 18 (6a): 64 px images without --size trained at swin-nano's 224 px, 12x the compute, silently."""
    data = make_folder(tmp_path / "data", per_class=4, size=64)
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--epochs", "1", "--max-steps", "1", "-o", str(out),
                 "--workers", "0", "-b", "4"]) == 0  # fmt: skip
    text = _notes(capsys)
    assert "size 64 (--size): the images are about 64 px" in text and "224 px would take 13x the compute" in text
    assert "window 4 (--window)" in text and "recipe auto (12 images, 3 classes, 64 px, from scratch)" in text
    args = json.loads((out / "args.json").read_text())
    assert args["size"] == 64 and args["window"] == 4


def test_fine_tuning_says_how_much_it_upsamples_the_images(tmp_path, capsys):
    """Issue 18 (6a): fine-tuning a 64 px checkpoint on 32 px images upsamples them 2x; the run says so."""
    data = make_folder(tmp_path / "data", per_class=4, size=32)
    ck = save_tiny(tmp_path / "m.safetensors", class_names=["blue", "green", "red"], size=64, window=4)
    assert main(["finetune", "-c", str(ck), "--data", str(data), "--epochs", "1", "--max-steps", "1",
                 "-o", str(tmp_path / "run"), "--workers", "0", "-b", "4"]) == 0  # fmt: skip
    assert "fine-tuning upsamples them 2.0x to the checkpoint's 64 px (--size sets the size)" in _notes(capsys)


def test_a_window_that_does_not_fit_the_size_is_replaced_or_named(tmp_path, capsys):
    """Issue 18 (6h): --size 64 with swin-nano's window 7 pads two stage maps (1.8x the compute), with only a
    clipping note. Without --window the recipe takes 4; with --window 7 it is kept and 4 suggested."""
    data = make_folder(tmp_path / "data", per_class=4, size=40)
    common = ["--data", str(data), "--size", "64", "--epochs", "1", "--max-steps", "1", "--workers", "0", "-b", "4"]
    assert main(["train", *common, "-o", str(tmp_path / "a")]) == 0
    text = _notes(capsys)
    assert "window 4 (--window): swin-nano's 7 pads the stage maps 16, 8 to 21, 14 at 64 px, at 1.8x the compute" in text
    assert json.loads((tmp_path / "a" / "args.json").read_text())["window"] == 4
    assert main(["train", *common, "--window", "7", "-o", str(tmp_path / "b")]) == 0
    assert "window 7 pads the stage maps 16, 8 to 21, 14 at 64 px; --window 4 fits" in _notes(capsys)
    assert json.loads((tmp_path / "b" / "args.json").read_text())["window"] == 7


def test_window_choice_keeps_official_layouts_and_scales_with_a_fine_tune():
    from swincli.engine.recipes.input_fit import fitting_window, side_for_images
    from swincli.models.registry import get_entry

    v1, v2 = (get_entry(n).build_config(num_classes=1) for n in ("swin-t", "swinv2-t"))
    assert fitting_window(v1, 224, 7) is None and fitting_window(v2, 256, 8) is None  # the published layouts fit
    assert fitting_window(v2, 384, 24) is None and fitting_window(v1, 384, 12) is None  # and their 384 px ones
    assert [fitting_window(v1, side, 7) for side in (64, 96, 128)] == [4, 6, 8]
    assert fitting_window(v1, 384, 7, near=7 * 384 / 224) == 12  # a fine-tune keeps the window's share of the map
    assert [side_for_images(s, v1) for s in (20, 40, 48, 64, 100, 500)] == [32, 32, 64, 64, 96, 224]


def test_a_folder_smaller_than_a_batch_trains_at_a_batch_it_fills(tmp_path, capsys):
    """24 images from scratch: the recipe's batch is 16 (the largest power of two they fill), not a refused 64."""
    data = make_folder(tmp_path / "d", per_class=8, size=32)
    code, out, err = run_cli(capsys, "train", "--data", data, "--epochs", "1", "--max-steps", "1", "-o", tmp_path / "r",
                             "--workers", "0")  # fmt: skip
    assert code == 0, err
    assert "batch size 16 (--batch-size)" in out and json.loads((tmp_path / "r" / "args.json").read_text())["batch_size"] == 16
