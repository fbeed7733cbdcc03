"""Derived tensors that some layouts store and every loader must drop (they are rebuilt from the config)."""

from __future__ import annotations

import re

DERIVED = re.compile(r"(relative_position_index|relative_coords_table|attn_mask|k_bias)$")


def is_derived(key: str) -> bool:
    return bool(DERIVED.search(key))
