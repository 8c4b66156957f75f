"""deploy/ray's scripts loaded as modules (they are scripts, not a package), for their unit tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

RAY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "ray"


def load(script: str) -> ModuleType:
    """`deploy/ray/<script>.py` as the module `ray_<script>`."""
    name = f"ray_{script}"
    spec = importlib.util.spec_from_file_location(name, RAY_DIR / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
