"""JSON Merge Patch (RFC 7396), the body of `PATCH /api/v1/configs/{id}`: an object merges key by key, `null`
deletes a key, anything else (lists included) replaces the value whole."""

from __future__ import annotations

import copy
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """The RFC 7396 result of applying `patch` to `target`; neither is changed."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
