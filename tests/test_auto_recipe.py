"""The ``auto`` recipe: values chosen from the data, each named with its flag, flags never overridden."""

import json

import pytest

from swincli.cli import main
from swincli.engine.recipes.auto import LARGE, DataStats
from swincli.engine.recipes.fixed import RECIPES
from swincli.engine.recipes.resolve import resolve
from swincli.engine.train_config import TrainConfig
from test_train import TINY, make_folder

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


def test_the_crop_grows_as_the_images_shrink_and_fine_tuning_starts_lower():
    sides = {side: resolve(TrainConfig(data="d"), stats=DataStats(1000, 5, side, False)).crop_scale for side in (32, 64, 144, 224, 384)}
    assert sides == {32: 0.6, 64: 0.6, 144: 0.34, 224: 0.08, 384: 0.08}
    cfg = resolve(TrainConfig(data="d", model="swin-nano"), finetune=True, stats=DataStats(5000, 5, 224, True))
    assert cfg.lr == pytest.approx(3e-4) and cfg.epochs == 30 and "fine-tuning" in cfg.notes[0]


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
