"""A service's app built the way the host builds it, with nothing behind it (no database opened,
nothing started): for reading its routes and its OpenAPI document."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from types import SimpleNamespace

from fastapi import FastAPI

from libs.events import default_registry
from libs.runtime.host import build_app
from libs.runtime.settings import RuntimeSettings


def service_app(name: str) -> FastAPI:
    """The app of service ``name`` (``libs.runtime.host.build_app``) with no context behind it."""
    spec = importlib.import_module(f"services.{name}.app").SPEC
    settings = RuntimeSettings(data_dir=Path(tempfile.gettempdir()))
    ctx = SimpleNamespace(keyring=None, settings=settings, db=settings.database(name),
                          registry=default_registry(), store=None)
    return build_app(spec, ctx)  # type: ignore[arg-type]
