"""Every Chorus error has its HTTP status from the one table in chorus/http_errors.py."""

from __future__ import annotations

import importlib
import pkgutil

import chorus
from chorus.agents.errors import ChorusError, ServerMisconfigured
from chorus.http_errors import status_of


def _all_errors() -> set[type[ChorusError]]:
    for module in pkgutil.walk_packages(chorus.__path__, "chorus."):
        importlib.import_module(module.name)
    found: set[type[ChorusError]] = set()
    pending: list[type[ChorusError]] = [ChorusError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def test_every_error_maps_to_a_status_in_one_place() -> None:
    errors = _all_errors()
    assert len(errors) > 15
    for cls in errors:
        assert "status" not in vars(cls), f"{cls.__qualname__} sets its own status; add its branch to STATUS"
        exc = cls.__new__(cls)
        status = status_of(exc)
        assert 400 <= status < 600
        if status == 500:
            assert issubclass(cls, ServerMisconfigured), f"{cls.__qualname__} has no branch: it would answer 500"
