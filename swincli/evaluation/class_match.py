"""Which labelled images ``swin eval`` scores against which model output: classes are matched by name.

A folder ``DIR/<class>/`` is scored against the checkpoint's ``class_names``, whatever the order of
either. Classes on one side only are refused with both lists (an accuracy over a silently different
class set is a wrong answer), unless ``--remap`` asks to score only the classes both have. A checkpoint
without names can only be matched by position: allowed when the counts agree, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch.utils.data import Dataset

from swincli.errors import SwinError

SHOWN = 5  # names listed per side in a message


@dataclass
class ClassMatch:
    """``index``: data class name -> model output; data classes not in it are not scored."""

    index: dict[str, int]
    notes: list[str] = field(default_factory=list)


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else "")


def match_classes(found: list[str], names: list[str] | None, num_classes: int, remap: bool, where: str) -> ClassMatch:
    """Match the data's classes (``found``, in label order) to the checkpoint's outputs; see the module doc."""
    if names is not None and len(names) != num_classes:
        names = None  # a stale list cannot name the outputs
    if names is None:
        if len(found) != num_classes:
            raise SwinError(
                f"{where} has {len(found)} classes but the checkpoint has {num_classes} outputs and no class names "
                "to match them by",
                hint="evaluate on data with exactly the model's classes, or save the checkpoint with class_names",
            )
        note = (f"the checkpoint has no class names: the {len(found)} classes of {where} are taken as its outputs "
                f"0..{num_classes - 1} in this order: {_names(found)}")  # fmt: skip
        return ClassMatch({c: i for i, c in enumerate(found)}, [note])
    position = {}
    for i, name in enumerate(names):
        position.setdefault(name, i)
    extra = [c for c in found if c not in position]
    have = set(found)
    missing = [c for c in names if c not in have]
    common = {c: position[c] for c in found if c in position}
    if not extra and not missing:
        return ClassMatch(common)
    sides = f"in {where} only: {_names(extra) or '-'}; in the checkpoint only: {_names(missing) or '-'}"
    if not remap:
        raise SwinError(
            f"the classes of {where} do not match the checkpoint's ({sides})",
            hint="pass --remap to score only the classes both have, matched by name, or rename the class folders",
        )
    if not common:
        raise SwinError(f"no class of {where} is one of the checkpoint's classes ({sides})",
                        hint="class folders are matched to the checkpoint's class names by name")  # fmt: skip
    notes = [f"--remap: scoring {len(common)} of the checkpoint's {num_classes} classes"]
    if extra:
        notes.append(f"--remap: skipped the images of {len(extra)} class(es) the checkpoint does not know: {_names(extra)}")
    if missing:
        notes.append(f"--remap: {len(missing)} checkpoint class(es) have no images: {_names(missing)}")
    return ClassMatch(common, notes)


class Relabeled(Dataset):
    """``base`` with its labels (indices into ``classes``) turned into model outputs; unmatched classes dropped."""

    def __init__(self, base: Dataset, classes: list[str], match: ClassMatch, targets: list[int] | None = None) -> None:
        self.base = base
        self.labels = [match.index.get(c) for c in classes]
        self.indices: list[int] | None = None
        if any(label is None for label in self.labels):
            targets = targets if targets is not None else [base[i][1] for i in range(len(base))]  # type: ignore[index]
            self.indices = [i for i, t in enumerate(targets) if self.labels[int(t)] is not None]

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int):
        image, label = self.base[self.indices[index] if self.indices is not None else index]
        return image, self.labels[int(label)]
