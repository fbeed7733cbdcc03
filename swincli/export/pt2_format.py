"""torch.export + AOTInductor: a ``.pt2`` package of compiled C++ (CPU) or CUDA kernels.

The program is exported with a dynamic batch and compiled ahead of time by Inductor, with freezing on the
CPU (weights folded into the kernels, as PyTorch recommends for CPU inference). The swincli record rides
in the archive's extra files. Loading needs torch only, no Python model code.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import torch

from swincli.errors import SwinError
from swincli.export.spec import ExportSpec

EXTRA = "swincli.json"


def has_compiler() -> bool:
    """AOTInductor compiles C++ for the CPU: is there a compiler to do it?"""
    return shutil.which("c++") is not None or shutil.which("g++") is not None


def write(net: torch.nn.Module, path: Path, spec: ExportSpec, meta: str) -> None:
    from torch.export.pt2_archive._package import package_pt2

    if not spec.device.startswith("cuda") and not has_compiler():
        raise SwinError("pt2 export compiles C++ and this machine has no C++ compiler", hint="install one (Debian: apt install g++)")
    x = spec.example()
    dim = spec.batch_dim()
    program = torch.export.export(spec.model_for(net), (x,), dynamic_shapes=({0: dim},) if dim is not None else None)
    options = {"aot_inductor.package": True, "freezing": not spec.device.startswith("cuda")}
    files = torch._inductor.aot_compile(program.module(), (x,), options=options)
    buffer = io.BytesIO()
    package_pt2(buffer, aoti_files={"model": files}, extra_files={EXTRA: meta})
    path.write_bytes(buffer.getvalue())


def read_metadata(path: Path) -> str | None:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith("extra/" + EXTRA)]
        return archive.read(names[0]).decode() if names else None


class Runner:
    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None, precision: str = "fp32") -> None:
        from torch.export.pt2_archive._package import load_pt2

        index = (torch.device(device).index or 0) if device.startswith("cuda") else -1
        self.model = load_pt2(str(path), device_index=index).aoti_runners["model"]
        self.device = device
        self.dtype = torch.float16 if precision == "fp16" else torch.float32

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x.to(self.device, self.dtype)).float()
