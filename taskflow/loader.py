"""Finding the app named by ``-A``: ``pkg.module:attr`` or ``pkg.module`` (then the module's
``app``, else its only :class:`Taskflow` instance), as Celery does."""

from __future__ import annotations

import importlib
import os
import sys

from taskflow.app import Taskflow
from taskflow.errors import ConfigurationError


def load_app(spec: str) -> Taskflow:
    """Import the app ``spec`` names, or raise :class:`ConfigurationError` saying why."""
    if not spec or not spec.strip():
        raise ConfigurationError("-A/--app needs a module path such as proj.app or proj:app")
    module_name, _, attr = spec.strip().partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        # Like Celery, let `-A proj` find a package in the working directory.
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the module named by -A (or a package on its path) missing is our error; a
        # missing import inside the app's own code is the user's, with its traceback.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConfigurationError(
                f"cannot import module {module_name!r} for -A {spec!r}: {exc}"
            ) from None
        raise
    if attr:
        obj = module
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if not isinstance(obj, Taskflow):
            raise ConfigurationError(
                f"{spec!r} is a {type(obj).__name__}, not a taskflow.Taskflow app"
            )
        return obj
    candidate = getattr(module, "app", None)
    if isinstance(candidate, Taskflow):
        return candidate
    apps = [v for v in vars(module).values() if isinstance(v, Taskflow)]
    unique = list({id(a): a for a in apps}.values())
    if len(unique) == 1:
        return unique[0]
    if not unique:
        raise ConfigurationError(
            f"module {module_name!r} has no taskflow.Taskflow app (name it `app`, or pass "
            f"-A {module_name}:<attribute>)"
        )
    raise ConfigurationError(
        f"module {module_name!r} has several Taskflow apps; "
        f"pick one with -A {module_name}:<attribute>"
    )


__all__ = ["load_app"]
