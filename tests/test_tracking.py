"""--log tensorboard / --log mlflow and swin eval --plot, on a tiny model and a 3-class folder (CPU)."""

import json
import shutil
import sys

import pytest
import torch
from PIL import Image

from swincli import load_model
from swincli.cli import main
from swincli.drawing.confusion_plot import draw_confusion, drawn_classes, figure_size, layout
from helpers import TINY, make_folder, run_cli

SCALARS = ("train_loss", "val_loss", "val_acc1", "val_acc5", "lr", "images_per_s")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("data"), per_class=4)  # 12 training images: 3 steps of 4 per epoch


@pytest.fixture
def offline_mlflow(tmp_path, monkeypatch):
    """No tracking server: the default store, ./mlruns in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "x")  # recorded, so whatever the run sets is undone
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    return tmp_path


@pytest.fixture(scope="module")
def logged_run(folder, tmp_path_factory):
    """A two-epoch run with --log tensorboard, and the same run without it."""
    root = tmp_path_factory.mktemp("runs")
    for name, extra in (("logged", ["--log", "tensorboard"]), ("plain", [])):
        assert main(["train", "--data", str(folder), "--epochs", "2", "-o", str(root / name), *TINY, *extra]) == 0
    return root


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def scalars(folder, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)], acc


def test_tensorboard_scalars_are_metrics_jsonl(logged_run):
    run = logged_run / "logged"
    table = rows(run)
    assert [r["epoch"] for r in table] == [1, 2]
    for key in SCALARS:
        points, acc = scalars(run / "tensorboard" / "epochs", key)
        assert [s for s, _ in points] == [1, 2], key
        assert [v for _, v in points] == pytest.approx([r[key] for r in table], rel=1e-6), key  # stored as float32
    tags = acc.Tags()
    assert {"train/examples", "confusion_matrix"} <= set(tags["images"]) and "settings/text_summary" in tags["tensors"]
    steps, _ = scalars(run / "tensorboard" / "steps", "step/lr")
    assert [s for s, _ in steps] == list(range(1, 7))
    assert Image.open(run / "confusion.png").size == figure_size(["blue", "green", "red"],
                                                                 "logged: validation after epoch 2")  # fmt: skip
    # logging reads example images through the augmentation, which seeds the RNG: the run must not change
    plain = logged_run / "plain"
    assert [r["train_loss"] for r in rows(plain)] == [r["train_loss"] for r in table]
    a, b = load_model(run / "last.safetensors").state_dict(), load_model(plain / "last.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def mlflow_run(run):
    from mlflow.tracking import MlflowClient

    state = json.loads((run / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=state["tracking_uri"])
    return client, client.get_run(state["run_id"])


def test_mlflow_logs_params_metrics_and_the_best_checkpoint(folder, offline_mlflow, capsys):
    code, out, err = run_cli(capsys, "train", "--data", str(folder), "--epochs", "2", "-o", "run", *TINY[:-1],
                             "--log", "mlflow")  # fmt: skip
    assert code == 0, err
    said = " ".join(out.split())  # notes wrap at the console's width
    assert "mlflow ui --backend-store-uri" in said and str(offline_mlflow / "mlruns") in said
    run = offline_mlflow / "run"
    client, logged = mlflow_run(run)
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    assert client.get_experiment(logged.info.experiment_id).name == "swincli"
    assert logged.data.params["epochs"] == "2" and float(logged.data.params["lr"]) == json.loads(
        (run / "args.json").read_text())["lr"]  # fmt: skip
    for key in SCALARS:
        history = sorted((m.step, m.value) for m in client.get_metric_history(logged.info.run_id, key))
        assert history == [(r["epoch"], r[key]) for r in rows(run)], key
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"best.safetensors", "curves.png", "confusion.png"} <= artifacts
    assert (offline_mlflow / "mlruns").is_dir()


def test_resume_logs_each_epoch_and_step_once(folder, offline_mlflow, capsys):
    """Epoch 1, then resume (adding mlflow), then a second resume from the epoch-1 state, as after a kill
    between logging epoch 2 and saving it: every tracker still has each epoch once, equal to the file."""
    base = ["--data", str(folder), "--epochs", "2", *TINY]
    assert run_cli(capsys, "train", *base, "-o", "run", "--max-steps", "3", "--log", "tensorboard")[0] == 0
    run = offline_mlflow / "run"
    assert [r["epoch"] for r in rows(run)] == [1]
    shutil.copy(run / "resume.safetensors", offline_mlflow / "epoch1.safetensors")
    again = ["--resume", "run", "--max-steps", "100", "--log", "tensorboard,mlflow"]
    code, out, err = run_cli(capsys, "train", *again)
    assert code == 0, err
    shutil.copy(offline_mlflow / "epoch1.safetensors", run / "resume.safetensors")
    code, out, err = run_cli(capsys, "train", *again)
    assert code == 0, err
    table = rows(run)
    assert [r["epoch"] for r in table] == [1, 2]
    for key in SCALARS:
        points, _ = scalars(run / "tensorboard" / "epochs", key)
        assert [s for s, _ in points] == [1, 2], key
        assert [v for _, v in points] == pytest.approx([r[key] for r in table], rel=1e-6), key
    steps, _ = scalars(run / "tensorboard" / "steps", "step/train_loss")
    assert [s for s, _ in steps] == list(range(1, 7))
    client, logged = mlflow_run(run)
    for key in ("train_loss", "val_acc1"):
        history = sorted((m.step, m.value) for m in client.get_metric_history(logged.info.run_id, key))
        assert history == [(r["epoch"], r[key]) for r in table], key  # epoch 1 filled in, epoch 2 once
    assert logged.info.status == "FINISHED"


@pytest.mark.parametrize("name, module, flag", [("tensorboard", "torch.utils.tensorboard", "--log"),
                                               ("mlflow", "mlflow", "--log-to")])  # fmt: skip
def test_a_missing_tracker_package_is_refused_before_training(folder, tmp_path, monkeypatch, capsys, name, module, flag):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were not installed
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", str(folder), "--epochs", "1", "-o", str(out), *TINY, flag, name)
    assert code == 1 and err.strip().count("\n") == 0 and "Traceback" not in err
    assert f"pip install 'swincli[{name}]'" in err
    assert not out.exists()  # refused before the run directory, the data or the model
    code, _, err = run_cli(capsys, "train", "--epochs", "1", "-o", str(out), *TINY, "--log", "wandb")
    assert code == 2 and "unknown tracker" in err


def test_eval_plot_writes_the_confusion_matrix(folder, logged_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    best = str(logged_run / "plain" / "best.safetensors")
    code, out, err = run_cli(capsys, "eval", "-c", best, "-d", str(folder), "--plot", "cm.png", "--workers", "0")
    assert code == 0, err
    assert Image.open("cm.png").size == figure_size(["blue", "green", "red"], f"best.safetensors on {folder}")
    assert Image.open("cm.png").format == "PNG"
    assert "Per class" in out and "mistaken for" in out and all(c in out for c in ("blue", "green", "red"))
    code, _, err = run_cli(capsys, "eval", "-c", best, "-d", str(folder), "--plot", "cm.png", "--workers", "0")
    assert code == 1 and "already exists" in err and "--force" in err
    code, out, err = run_cli(capsys, "eval", "-c", best, "-d", str(folder), "--plot", "cm.png", "-f", "--workers", "0",
                             "--format", "json")  # fmt: skip
    data = json.loads(out)
    matrix = data["confusion"]["matrix"]
    assert code == 0 and data["confusion"]["classes"] == ["blue", "green", "red"]
    assert sum(map(sum, matrix)) == data["images"] == 6
    assert [row["images"] for row in data["per_class"]] == [sum(r) for r in matrix]
    assert [row["acc1"] for row in data["per_class"]] == pytest.approx([100 * matrix[i][i] / 2 for i in range(3)])
    assert data["acc1"] == pytest.approx(100 * sum(matrix[i][i] for i in range(3)) / 6)


def test_more_than_a_hundred_classes_draw_the_most_confused(tmp_path):
    n = 130
    matrix = torch.diag(torch.full((n,), 5))
    matrix[7, 3] = 4  # class 7 is taken for class 3: both must be drawn
    note = draw_confusion(matrix, [f"c{i}" for i in range(n)], tmp_path / "cm.png")
    assert note and "100 most confused of 130" in note
    assert Image.open(tmp_path / "cm.png").size == figure_size([f"c{i}" for i in drawn_classes(matrix)],
                                                               "confusion matrix (100 most confused of 130 classes)")  # fmt: skip
    shown = drawn_classes(matrix)
    assert len(shown) == 100 and {3, 7} <= set(shown)


def _longest_white_run(pixels, rows: range, columns: slice) -> int:
    """The most consecutive rows in ``rows`` that are white across ``columns``."""
    best = run = 0
    for y in rows:
        run = run + 1 if (pixels[y, columns] > 245).all() else 0
        best = max(best, run)
    return best


def test_the_confusion_png_has_no_empty_band_and_shows_every_mistake(tmp_path, capsys):
    """Issue 18.6g: a band of white under the title (the label bands were 150 px whatever the names), and a
    1-count cell among 20 drawn all but white."""
    import numpy as np

    from swincli import create_model, save_model

    torch.manual_seed(0)  # a random model that takes most of each class for another, and a few images right
    ck = save_model(create_model("swin-nano", img_size=32, window_size=2, num_classes=3), tmp_path / "r.safetensors",
                    class_names=["blue", "green", "red"])  # fmt: skip
    rng = np.random.default_rng(0)
    for name, rgb in (("blue", (40, 40, 200)), ("green", (40, 200, 40)), ("red", (200, 40, 40))):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(20):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 60, (32, 32, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(tmp_path / "d" / name / f"{i}.png")
    code, out, err = run_cli(capsys, "eval", "-c", str(ck), "-d", str(tmp_path / "d"), "--plot", str(tmp_path / "cm.png"),
                             "--format", "json", "--workers", "0")  # fmt: skip
    assert code == 0, err
    matrix = json.loads(out)["confusion"]["matrix"]
    assert any(0 < v <= 2 for row in matrix for v in row), matrix  # a cell of a few images among 20
    pixels = np.asarray(Image.open(tmp_path / "cm.png").convert("RGB")).astype(int)
    at = layout(["blue", "green", "red"], f"r.safetensors on {tmp_path / 'd'}")
    assert pixels.shape[:2] == at.size[::-1]
    x0, y0 = at.origin
    assert _longest_white_run(pixels, range(30, y0), slice(x0, x0 + 3 * at.cell)) <= 12  # title, axis, labels, matrix
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            left, top, _, _ = at.cell_box(i, j)
            corner = pixels[top + 3 : top + 8, left + 3 : left + 8].reshape(-1, 3)  # away from the number
            darkest = int((255 - corner.min(0)).max())
            assert (darkest >= 40) if count else (darkest == 0), (i, j, count, corner[0])
