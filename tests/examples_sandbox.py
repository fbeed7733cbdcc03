"""Every documented ``swin`` command line, collected; a fresh sandbox for each; a runner that runs them.

Where examples come from (so a new one cannot escape tests/test_cli_examples.py):
- the ``Examples`` epilog of every command's ``--help``: each ``$ LINE`` of every epilog in the click
  tree of ``build_app()``;
- README.md and docs/*.md: in a fenced block marked console, every line starting with ``$ ``; in one
  marked bash/sh/shell, every line starting with ``swin `` or ``torchrun `` or piping into ``| swin ``.
  An indented line right after a command continues it (the synopses in docs/predict.md), and so does
  a trailing backslash. A trailing ``# comment`` is dropped. Python snippets are not collected.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"bash", "sh", "shell"}


def help_examples() -> dict[str, list[str]]:
    """``$ LINE`` of every command's help epilog -> the commands that show it (``swin``, ``swin models list``)."""
    import typer

    from swincli.cli.app import build_app

    found: dict[str, list[str]] = {}

    def walk(command, path: str) -> None:
        text = re.sub(r"\[/?[a-z][a-z ]*\]", "", command.epilog or "")  # rich markup: [bold]...[/bold]
        lines = re.findall(r"^\s*\$ (.+)$", text, flags=re.M)
        assert lines or "Examples" not in text, f"cannot read the examples of {path} --help: {text!r}"
        for line in lines:
            found.setdefault(line.strip(), []).append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(build_app()), "swin")
    return found


def commands(path: Path) -> Iterator[str]:
    """The command lines in ``path``'s console and shell code fences (convention in the module docstring)."""
    fence, lines = None, []
    for raw in path.read_text().splitlines():
        line = raw.rstrip()
        if line.lstrip().startswith("```"):
            if fence is not None:
                yield from _commands(fence, lines)
                fence, lines = None, []
            else:
                fence = line.strip()[3:].strip().lower()
            continue
        if fence is not None:
            lines.append(line)


def _commands(fence: str, lines: list[str]) -> Iterator[str]:
    current: str | None = None
    for line in lines:
        if current is not None and (current.endswith("\\") or (line[:1].isspace() and line.strip())):
            current = current.rstrip("\\").rstrip() + " " + line.strip()
            continue
        if current is not None:
            yield _strip_comment(current)
            current = None
        text = line.strip()
        if fence == "console" and text.startswith("$ "):
            current = text[2:].strip()
        elif fence in SHELLS and (text.startswith(("swin ", "torchrun ")) or "| swin " in text or text == "swin"):
            current = text
    if current is not None:
        yield _strip_comment(current)


def _strip_comment(line: str) -> str:
    return re.sub(r"\s+#\s.*$", "", line).strip()


def doc_examples() -> dict[str, list[str]]:
    """Command line -> the documents that show it (``README.md``, ``docs/predict.md``)."""
    found: dict[str, list[str]] = {}
    for path in DOCS:
        for line in commands(path):
            found.setdefault(line, []).append(str(path.relative_to(ROOT)))
    return found


def all_examples() -> dict[str, list[str]]:
    """Every documented command line -> where it is shown."""
    out: dict[str, list[str]] = {}
    for source in (help_examples(), doc_examples()):
        for line, where in source.items():
            out.setdefault(line, []).extend(f"{w} --help" if w.startswith("swin") else w for w in where)
    return out


def doc_file(name: str) -> str:
    """The file a document shows in full: a yaml or json fence whose first line is ``# name``."""
    for path in DOCS:
        for block in re.findall(r"```(?:yaml|yml|json)\n(.*?)```", path.read_text(), flags=re.S):
            if block.splitlines()[0].strip() == f"# {name}":
                return block
    raise LookupError(f"no document shows {name}")


def sandbox(root: Path) -> tuple[Path, dict[str, str]]:
    """A fresh working directory, and an environment whose HOME, HF_HOME and SWIN_CACHE lie inside ``root``
    (HF_HUB_OFFLINE=1; the venv's ``swin`` and ``torchrun`` first on PATH; matplotlib's font cache shared).

    OMP_NUM_THREADS=1 because :class:`Runner` runs two examples at once: two-thread OpenMP teams on
    shared cores wait at every barrier (swincli/threads.py): the 9 s demo run took 180 s of CPU.
    """
    work = root / "work"
    for folder in (work, root / "home", root / "hf", root / "swin-cache"):
        folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "SWIN_DEBUG", "SWIN_OFFLINE")}
    env.update(HOME=str(root / "home"), HF_HOME=str(root / "hf"), SWIN_CACHE=str(root / "swin-cache"),
               HF_HUB_OFFLINE="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               MPLCONFIGDIR=str(root.parent / "matplotlib"), COLUMNS="160", OMP_NUM_THREADS="1")  # fmt: skip
    return work, env


def destination(root: Path, dest: str) -> Path:
    """Where a file an example names lies: ``~/x`` under HOME, ``$HF_HOME`` itself, else the working directory."""
    if dest.startswith("~/"):
        return root / "home" / dest[2:]
    if dest == "$HF_HOME":
        return root / "hf"
    return root / "work" / dest


def shell_line(example: str, extra: str = "", replace: tuple[tuple[str, str], ...] = (), nodes: int = 1) -> str:
    """The example as the shell runs it: substitutions, ``extra`` appended, ``nodes`` copies at once."""
    for old, new in replace:
        assert old in example, f"{old!r} is not in {example!r}"
        example = example.replace(old, new)
    line = f"{example} {extra}".strip()
    if nodes == 1:
        return line
    started = " ".join(f"({line}) & p{i}=$!;" for i in range(nodes - 1))
    waited = " ".join(f"wait $p{i} || rc=1;" for i in range(nodes - 1))
    return f"rc=0; {started} ({line}) || rc=1; {waited} exit $rc"


class Runner:
    """Runs the examples' shell lines two at a time in the background, each in its own sandbox.

    Why two: most of an example's time is Python importing torch, on one core, so a second example
    keeps the other core busy. torchrun examples run one after another (they share port 29500).
    """

    def __init__(self, jobs: int = 2) -> None:
        self.pool = ThreadPoolExecutor(jobs)
        self.one_torchrun = threading.Lock()
        self.futures: dict[str, Future] = {}
        self.roots: dict[str, Path] = {}

    def submit(self, example: str, line: str, root: Path) -> None:
        """Start ``line`` in the sandbox ``root`` (files already placed there) once a job is free."""
        work, env = sandbox(root)
        self.roots[example] = root
        self.futures[example] = self.pool.submit(self._run, line, work, env)

    def _run(self, line: str, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        with self.one_torchrun if "torchrun" in line else contextlib.nullcontext():
            return subprocess.run(line, shell=True, executable="/bin/bash", cwd=work, env=env, capture_output=True,
                                  text=True, timeout=900)  # fmt: skip

    def result(self, example: str) -> tuple[subprocess.CompletedProcess, Path]:
        """The finished process of ``example``, and its sandbox."""
        return self.futures[example].result(), self.roots[example]

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
