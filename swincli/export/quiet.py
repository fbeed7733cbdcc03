"""Converters and runtimes talk on stderr (torch's C++ build notes, ExecuTorch's CPU probing): keep them quiet.

Their failures still reach the user: they raise, and the exporter turns the exception into one line.
``SWIN_DEBUG=1`` lets everything through.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from typing import Iterator

CHATTY_LOGGERS = ("torch.utils.cpp_extension", "torch.utils._pytree", "torch._inductor", "torch.export", "torch._export",
                  "nncf", "executorch", "torchao")  # fmt: skip


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Python warnings, the chatty loggers and, at the file-descriptor level, native stderr."""
    if os.environ.get("SWIN_DEBUG"):
        yield
        return
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
