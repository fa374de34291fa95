"""``-A``: finding the app in ``pkg.module`` or ``pkg.module:attr``, as Celery does."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from taskflow import ConfigurationError, Taskflow
from taskflow.loader import load_app


class Writer(Protocol):
    def __call__(self, body: str, name: str | None = None) -> str: ...


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Writer]:
    """Write a uniquely named module with this body; return its name (importable)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(body: str, name: str | None = None) -> str:
        module = name or f"tf_loader_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{module}.py").write_text(
            "from taskflow import Taskflow\nDB = 'sqlite:///never-opened.sqlite3'\n" + body
        )
        names.append(module)
        return module

    yield write
    for module in names:
        sys.modules.pop(module, None)


def test_module_with_app(write_module: Writer) -> None:
    module = write_module("app = Taskflow('main', database_url=DB)\nother = 1\n")
    app = load_app(module)
    assert isinstance(app, Taskflow)
    assert app.name == "main"
    assert app is sys.modules[module].app


def test_app_attribute_wins_over_other_instances(write_module: Writer) -> None:
    module = write_module(
        "side = Taskflow('side', database_url=DB)\napp = Taskflow('main', database_url=DB)\n"
    )
    assert load_app(module).name == "main"


def test_module_colon_attribute(write_module: Writer) -> None:
    module = write_module(
        "app = Taskflow('main', database_url=DB)\n"
        "celery = Taskflow('other', database_url=DB)\n"
        "class Holder:\n"
        "    nested = Taskflow('nested', database_url=DB)\n"
    )
    assert load_app(f"{module}:celery").name == "other"
    assert load_app(f" {module}:app ").name == "main"
    assert load_app(f"{module}:Holder.nested").name == "nested"


def test_only_instance_under_another_name(write_module: Writer) -> None:
    module = write_module("shop = Taskflow('shop', database_url=DB)\nalias = shop\napp = 5\n")
    assert load_app(module).name == "shop"


def test_module_without_app(write_module: Writer) -> None:
    module = write_module("x = 1\n")
    with pytest.raises(ConfigurationError, match=r"no taskflow\.Taskflow app") as info:
        load_app(module)
    assert f"{module}:<attribute>" in str(info.value)


def test_module_with_two_apps(write_module: Writer) -> None:
    module = write_module(
        "a = Taskflow('a', database_url=DB)\nb = Taskflow('b', database_url=DB)\n"
    )
    with pytest.raises(ConfigurationError, match="several Taskflow apps") as info:
        load_app(module)
    assert f"-A {module}:<attribute>" in str(info.value)


def test_missing_attribute(write_module: Writer) -> None:
    module = write_module("app = Taskflow('main', database_url=DB)\n")
    with pytest.raises(ConfigurationError, match="has no attribute 'nope'"):
        load_app(f"{module}:nope")


def test_attribute_that_is_not_an_app(write_module: Writer) -> None:
    module = write_module("settings = {'a': 1}\n")
    with pytest.raises(ConfigurationError, match=r"is a dict, not a taskflow\.Taskflow app"):
        load_app(f"{module}:settings")


def test_missing_module() -> None:
    name = f"tf_no_such_module_{uuid.uuid4().hex}"
    with pytest.raises(ConfigurationError, match=f"cannot import module '{name}'"):
        load_app(name)
    with pytest.raises(ConfigurationError, match="cannot import module"):
        load_app(f"{name}.sub:app")


@pytest.mark.parametrize("spec", ["", "   "])
def test_empty_spec(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="-A/--app"):
        load_app(spec)


def test_missing_dependency_of_the_app_module_is_not_masked(write_module: Writer) -> None:
    """The app module exists but imports something missing: that error surfaces as is,
    even when the missing name is a prefix of the module's name."""
    base = f"tf_dep_{uuid.uuid4().hex[:8]}"
    module = write_module(f"import {base}\n", name=f"{base}_app")
    with pytest.raises(ModuleNotFoundError) as info:
        load_app(module)
    assert info.value.name == base


def test_error_inside_the_app_module_surfaces(write_module: Writer) -> None:
    module = write_module("raise RuntimeError('broken settings')\n")
    with pytest.raises(RuntimeError, match="broken settings"):
        load_app(module)


def test_package_module(tmp_path: Path, write_module: Writer) -> None:
    package = f"tf_pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "celery.py").write_text(
        "from taskflow import Taskflow\nproj = Taskflow('proj', database_url='sqlite:///x.db')\n"
    )
    try:
        assert load_app(f"{package}.celery").name == "proj"
        with pytest.raises(ConfigurationError, match="cannot import module"):
            load_app(f"{package}.missing")
    finally:
        for name in (package, f"{package}.celery"):
            sys.modules.pop(name, None)
