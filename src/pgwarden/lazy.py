"""Packages that import their submodules on first use (PEP 562): start-up pays only for what a command uses."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any


def attribute(package: str, where: Mapping[str, str], name: str) -> Any:
    """`package`'s attribute `name`, imported from its submodule `where[name]` and kept in the package
    (the next lookup is a dictionary's); a package's `__getattr__` returns it."""
    module = where.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{package}.{module}"), name)
    vars(sys.modules[package])[name] = value
    return value
