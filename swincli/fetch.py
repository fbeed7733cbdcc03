"""``http(s)://`` inputs: downloaded once into the cache, then read like any file.

A URL is cached under ``$SWIN_CACHE/downloads/<sha256 of the URL><suffix>`` (default
``~/.cache/swincli``), written atomically, so a second run reads the file and an interrupted download
leaves nothing behind. Only ``urllib`` is used: no new dependency.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from swincli._version import __version__
from swincli.fileio import atomic_file

TIMEOUT_S = 30.0  # connect and each read
MAX_BYTES = 100 * 2**20  # an image larger than this is a mistake (or an attack), not a photo
_CHUNK = 1 << 16


class FetchError(Exception):
    """A URL that could not be downloaded; the message is the per-input error the user sees."""


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def downloads_dir() -> Path:
    return Path(os.environ.get("SWIN_CACHE", Path.home() / ".cache" / "swincli")) / "downloads"


def cached_path(url: str) -> Path:
    """Where the download of ``url`` is kept: the URL's hash plus its file suffix (if it has a short one)."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    suffix = suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""
    return downloads_dir() / (hashlib.sha256(url.encode()).hexdigest() + suffix)


def fetch(url: str, timeout: float = TIMEOUT_S, max_bytes: int = MAX_BYTES) -> Path:
    """The local copy of ``url``: the cached one, or downloaded now. Raises :class:`FetchError`."""
    path = cached_path(url)
    if path.is_file():
        return path
    request = urllib.request.Request(url, headers={"User-Agent": f"swincli/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only (is_url)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"download larger than {max_bytes // 2**20} MiB ({int(declared):,} bytes)")
            with atomic_file(path) as tmp, open(tmp, "wb") as out:
                size = 0
                while chunk := response.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"download larger than {max_bytes // 2**20} MiB")
                    out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"download failed: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise FetchError(f"cannot reach {urlsplit(url).netloc}: no answer in {timeout:g} s") from None
        why = getattr(reason, "strerror", None) or str(reason)
        raise FetchError(f"cannot reach {urlsplit(url).netloc} ({why})") from None
    except (TimeoutError, socket.timeout):
        raise FetchError(f"download from {urlsplit(url).netloc} stalled: no data for {timeout:g} s") from None
    except (OSError, ValueError) as exc:  # connection reset, bad URL (http://[), disk full
        raise FetchError(f"download failed ({type(exc).__name__}: {str(exc)[:80]})") from None
    return path
