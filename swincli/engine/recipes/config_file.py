"""``--config recipe.yaml``: a flat file of option names whose values become defaults (flags win)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from swincli.engine.train_config import check_settings
from swincli.errors import SwinUsageError
from swincli.sizes import parse_size, parse_window

_SCALAR = re.compile(r"^(true|false|yes|no|null|~)$", re.IGNORECASE)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A flat ``key: value`` YAML (or JSON) file of option names; its values become defaults, flags win.

    Supports the subset settings files need: comments, scalars, quoted strings and ``[a, b]`` lists.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SwinUsageError(f"cannot read config file {path}: {exc.strerror}") from None
    if path.suffix == ".json":
        try:
            values = {k.replace("-", "_"): v for k, v in json.loads(text).items()}
        except (ValueError, AttributeError) as exc:
            raise SwinUsageError(f"{path} is not a JSON object ({exc})") from None
        return _sizes(path, check_settings(values, f"{path}: "))
    out: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line or line == "---":
            continue
        key, sep, value = line.partition(":")
        if not sep or raw[:1].isspace():
            raise SwinUsageError(f"{path}:{number}: expected 'option: value' at the top level", hint="nesting is not supported")
        out[key.strip().replace("-", "_")] = _value(value.strip())
    return _sizes(path, check_settings(out, f"{path}: "))


def _sizes(path: Path, values: dict[str, Any]) -> dict[str, Any]:
    """``size: 384``, ``size: [256, 320]``, ``window: [12, 12, 12, 6]`` or their string forms, checked like the flags."""
    for key, parse in (("size", parse_size), ("window", parse_window)):
        value = values.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join("x".join(map(str, v)) if isinstance(v, list) else str(v) for v in value)
        try:
            values[key] = parse(str(value))
        except SwinUsageError as exc:
            raise SwinUsageError(f"{path}: {exc.message}", hint=exc.hint) from None
    return values


def _value(text: str) -> Any:
    if text.startswith("[") and text.endswith("]"):
        return [_value(part.strip()) for part in text[1:-1].split(",") if part.strip()]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if _SCALAR.match(text):
        return {"true": True, "yes": True, "false": False, "no": False}.get(text.lower())
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
