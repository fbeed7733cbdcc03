"""The files the documented examples name, built once per test session and placed into each sandbox.

Published weights cannot be downloaded here, so they are faked where swincli would find them: a
Hugging Face cache laid out like the Hub's (``hub/models--timm--<arch>.<tag>/snapshots/<rev>/``) with
randomly initialised weights of the right architecture in timm's key layout. Official release files
(``swin_tiny_patch4_window7_224.pth``) are written in the official layout, ``{'model': state}``.

Which model a file holds: a file named like a release or a registry name, or used with ``--model``,
holds that architecture (``swinv2_base_window12_192.safetensors`` is a SwinV2-B). A name a user chose
(``model.safetensors``, ``best.safetensors``, ``b192.safetensors``, ``swinv2-b-192.safetensors``)
holds a small model with the size and window the example implies (192 px, window 12): the same code
runs, at a fraction of the cost of a base model at 384 px.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from examples_sandbox import doc_file

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CLASSES = ("cat", "dog")  # the tiny dataset's classes, and so those of every checkpoint "trained" on it
LINK_ABOVE = 1 << 20  # files larger than this are hard-linked into a sandbox, smaller ones copied


def _image(path: Path, seed: int, size=(48, 40)) -> None:
    pixels = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _images(suffix: str, count: int) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        for i in range(count):
            _image(folder / f"img{i}{suffix}", seed=i)

    return build


def _dataset(classes: tuple[str, ...]) -> Callable[[Path], None]:
    """DIR/train/<class>/*.png and DIR/val/<class>/*.png, each class tinted its own way."""

    def build(root: Path) -> None:
        rng = np.random.default_rng(0)
        for part, count in (("train", 2), ("val", 1)):
            for c, name in enumerate(classes):
                for i in range(count):
                    pixels = rng.random((40, 40, 3)) * 120
                    pixels[..., c % 3] += 120
                    (root / part / name).mkdir(parents=True, exist_ok=True)
                    Image.fromarray(pixels.astype("uint8")).save(root / part / name / f"{i}.png")

    return build


def _hf_dataset(root: Path) -> None:
    """A Hugging Face DatasetDict (train, validation) written by save_to_disk, classes cat and dog."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features
    from datasets import Image as HFImage

    rng = np.random.default_rng(0)

    def split(count: int) -> Dataset:
        images = [Image.fromarray((rng.random((40, 40, 3)) * 255).astype("uint8")) for _ in range(count)]
        return Dataset.from_dict({"image": images, "label": [i % len(CLASSES) for i in range(count)]},
                                 features=Features({"image": HFImage(), "label": ClassLabel(names=list(CLASSES))}))  # fmt: skip

    DatasetDict(train=split(8), validation=split(4)).save_to_disk(str(root))


def _wds_shards(root: Path) -> None:
    """webdataset shards train-00000{0..3}.tar and val-000000.tar (KEY.png + KEY.cls) with a classes.txt."""
    import io
    import tarfile

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for name, count in [(f"train-{i:06d}", 4) for i in range(4)] + [("val-000000", 4)]:
        with tarfile.open(root / f"{name}.tar", "w") as tar:
            for i in range(count):
                buf = io.BytesIO()
                Image.fromarray((rng.random((40, 40, 3)) * 255).astype("uint8")).save(buf, "PNG")
                for member, data in ((f"{name}_{i}.png", buf.getvalue()), (f"{name}_{i}.cls", str(i % len(CLASSES)).encode())):
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES))


def _run(store: "Assets") -> Callable[[Path], None]:
    """A real (tiny) run directory: swin-nano trained one step of a two-epoch run, so it also resumes."""

    def build(out: Path) -> None:
        from swincli.cli import main

        args = ["train", "--data", str(store.path("dataset")), "--epochs", "2", "--max-steps", "1", "-o", str(out),
                "--size", "32", "--window", "2", "-b", "2", "--workers", "0", "--quiet"]  # fmt: skip
        assert main(args) == 0, "the tiny training run for the examples failed"

    return build


def _run_exported(store: "Assets") -> Callable[[Path], None]:
    """The tiny run directory with its best weights exported to ONNX and OpenVINO (best.onnx, best.xml)."""

    def build(out: Path) -> None:
        from swincli.cli import main

        shutil.copytree(store.path("run"), out)
        for fmt in ("onnx", "openvino"):
            assert main(["export", str(out / "best.safetensors"), "--to", fmt]) == 0, f"exporting the run to {fmt} failed"

    return build


def _ours(name: str, num_classes: int = 1000, class_names=None, **kw) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        from swincli import create_model, save_model

        save_model(create_model(name, num_classes=num_classes, **kw), path, class_names=class_names)

    return build


def _small_v2_finetuned(path: Path) -> None:
    """A small V2 fine-tuned from 192 px, window 12 to 384 px, window 24 (pretrained windows 12, 12, 12, 6)."""
    from swincli import create_model, save_model

    model = create_model("swinv2-nano", num_classes=len(CLASSES), img_size=192, window_size=12)
    model.set_input_size(img_size=384, window_size=24)
    save_model(model, path, class_names=list(CLASSES))


def _official(name: str) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        import torch

        from swincli import create_model
        from swincli.convert.official_layout import to_official

        model = create_model(name, num_classes=1000)
        torch.save({"model": to_official(model.state_dict(), model)}, path)

    return build


def _hf_folder(store: "Assets", source: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        from swincli.convert.run import convert

        convert(store.path(source), folder, to="hf", check=False)

    return build


def _hub(*names: str) -> Callable[[Path], None]:
    """``HF_HOME`` with ``hub/models--timm--<arch>.<tag>`` for the weights each name loads (``swinv2-b``):
    refs/main and one snapshot."""

    def build(home: Path) -> None:
        from safetensors.torch import save_file

        from swincli import create_model
        from swincli.convert.timm_layout import to_timm
        from swincli.hub import resolve_weights

        for name in names:
            entry, weights = resolve_weights(name)
            full = f"{entry.name}.{weights.tag}"
            folder = home / "hub" / f"models--timm--{full}"
            (folder / "refs").mkdir(parents=True)
            (folder / "refs" / "main").write_text(COMMIT)
            (folder / "snapshots" / COMMIT).mkdir(parents=True)
            state = to_timm(create_model(entry.name, num_classes=weights.num_classes).state_dict())
            save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "snapshots" / COMMIT / "model.safetensors"))

    return build


class Assets:
    """Named files and folders, each built on first use under ``root`` and reused for the session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.builders: dict[str, Callable[[Path], None]] = {
            "img.jpg": lambda p: _image(p, 1),
            "img.png": lambda p: _image(p, 2),
            "jpgs": _images(".jpg", 2),
            "pngs": _images(".png", 2),
            "dataset": _dataset(CLASSES),
            "dataset-extra": _dataset((*CLASSES, "fox")),  # a class the checkpoints do not know
            "hf-dataset": _hf_dataset,  # --data hf:DIR
            "wds-shards": _wds_shards,  # --data 'wds:...'
            "run": _run(self),
            "run-exported": _run_exported(self),
            "swin-t.safetensors": _ours("swin-t"),
            "tiny.safetensors": _ours("swin-nano", num_classes=len(CLASSES), class_names=list(CLASSES), img_size=64,
                                      window_size=2),  # 64 px: Hugging Face can run it (no clipped window)
            "swinv2-b-192.safetensors": _ours("swinv2_base_window12_192"),
            "v2-192.safetensors": _ours("swinv2-nano", img_size=192, window_size=12),
            "v2-384-ft.safetensors": _small_v2_finetuned,
            "swin-t-official.pth": _official("swin_tiny_patch4_window7_224"),
            "swinv2-t-official.pth": _official("swinv2_tiny_window8_256"),
            "swinv2-b-384-official.pth": _official("swinv2_base_window12to24_192to384"),
            "hf-swin-b": _hf_folder(self, "swin-b.safetensors"),
            "swin-b.safetensors": _ours("swin-b"),
            "recipe.yaml": lambda p: p.write_text(doc_file("recipe.yaml")),  # the file docs/training.md shows
            "hub": _hub("swinv2-b", "swinv2-t"),  # named in examples, and swinv2-t is predict's default
        }

    def path(self, name: str) -> Path:
        target = self.root / name
        if not target.exists():
            building = self.root / ".building" / name  # renamed into place once complete
            shutil.rmtree(building, ignore_errors=True)
            building.parent.mkdir(parents=True, exist_ok=True)
            self.builders[name](building)
            building.rename(target)
        return target

    def place(self, name: str, dest: Path, inner: str = "") -> None:
        """Put asset ``name`` (or its file ``inner``) at ``dest``: big files hard-linked (swincli writes
        through a temporary file and a rename, never in place), small ones copied."""
        source = self.path(name) / inner if inner else self.path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, copy_function=_link_or_copy, dirs_exist_ok=True)
        else:
            _link_or_copy(source, dest)


def _link_or_copy(source, dest) -> None:
    if os.path.getsize(source) > LINK_ABOVE:
        os.link(source, dest)
    else:
        shutil.copy2(source, dest)
