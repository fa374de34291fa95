"""``@shared_task`` and autodiscovery, with a tiny fake app (no database)."""

from __future__ import annotations

import gc
import inspect
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taskflow import shared
from taskflow.errors import ConfigurationError
from taskflow.shared import (
    SharedTask,
    autodiscover,
    current_app,
    register_app,
    set_current_app,
    shared_task,
)


class FakeWorkflow:
    """What FakeApp.task makes of a function: callable, with ``delay`` and ``name``."""

    def __init__(self, app: FakeApp, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.app = app
        self.fn = fn
        self.options = options
        self.name = options.get("name") or f"{fn.__module__}.{fn.__qualname__}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.app.ran.append(self.name)
        return self.fn(*args, **kwargs)

    def delay(self, *args: Any) -> str:
        return f"{self.app.label}:{self.name}{args}"


class FakeApp:
    """The one thing shared tasks need from an app: ``task(**options)``."""

    def __init__(self, label: str, register: bool = True) -> None:
        self.label = label
        self.registered: dict[str, FakeWorkflow] = {}
        self.calls = 0
        self.ran: list[str] = []
        if register:
            register_app(self)

    def task(self, **options: Any) -> Callable[[Callable[..., Any]], FakeWorkflow]:
        def decorator(fn: Callable[..., Any]) -> FakeWorkflow:
            self.calls += 1
            wf = FakeWorkflow(self, fn, options)
            self.registered[wf.name] = wf
            return wf

        return decorator


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no shared tasks and no apps (real apps made elsewhere in the
    suite stay out of it)."""
    monkeypatch.setattr(shared, "_registry", shared._Registry())


def add(x: int, y: int) -> int:
    """Adds."""
    return x + y


def test_task_defined_before_the_app_registers_when_the_app_is_created() -> None:
    task = shared_task(add)
    app = FakeApp("a")
    assert set(app.registered) == {f"{__name__}.add"}
    assert task(2, 3) == 5
    assert app.ran == [f"{__name__}.add"]
    assert task.delay(1, 2) == f"a:{__name__}.add(1, 2)"
    assert task.name == f"{__name__}.add"


def test_task_defined_after_apps_registers_on_every_live_app_at_once() -> None:
    first, second = FakeApp("first"), FakeApp("second")

    @shared_task(name="mail.send", bind=True)
    def send(to: str) -> str:
        return to

    for app in (first, second):
        assert app.registered["mail.send"].options == {"name": "mail.send", "bind": True}
    assert isinstance(send, SharedTask)
    assert send.options == {"name": "mail.send", "bind": True}


def test_bare_and_called_decorator_forms() -> None:
    app = FakeApp("a")

    @shared_task
    def bare() -> str:
        return "bare"

    @shared_task()
    def called() -> str:
        return "called"

    assert bare() == "bare"
    assert called() == "called"
    assert app.calls == 2


def test_each_task_registers_once_per_app() -> None:
    task = shared_task(add)
    app = FakeApp("a")
    register_app(app)  # again: nothing new
    for _ in range(3):
        task(1, 1)
        _ = task.name
    assert app.calls == 1


def test_proxy_follows_the_current_app() -> None:
    task = shared_task(add)
    first, second = FakeApp("first"), FakeApp("second")
    assert current_app() is second  # most recently registered
    assert task.app is second
    set_current_app(first)
    assert current_app() is first
    assert task(1, 1) == 2
    assert task.app is first
    assert len(first.ran) == 1
    set_current_app(None)
    assert task.app is second


def test_app_made_current_without_registering_gets_the_task_lazily() -> None:
    task = shared_task(add)
    app = FakeApp("unregistered", register=False)
    set_current_app(app)
    assert task(1, 2) == 3
    assert task.app is app
    assert app.calls == 1


def test_without_an_app_the_proxy_says_to_create_one() -> None:
    task = shared_task(add)
    assert current_app() is None
    with pytest.raises(ConfigurationError, match="Taskflow app must be created first") as info:
        task(1, 2)
    assert f"{__name__}.add" in str(info.value)
    with pytest.raises(ConfigurationError, match="created first"):
        _ = task.delay


def test_dead_apps_are_forgotten() -> None:
    task = shared_task(add)
    keep = FakeApp("keep")
    FakeApp("dropped")
    gc.collect()
    assert current_app() is keep
    assert task.app is keep


def test_current_app_that_died_falls_back_to_the_latest_live_one() -> None:
    keep = FakeApp("keep")
    gone = FakeApp("gone", register=False)
    set_current_app(gone)
    del gone
    gc.collect()
    assert current_app() is keep


def test_registration_does_not_keep_apps_alive() -> None:
    task = shared_task(add)
    app = FakeApp("a")
    task(1, 1)  # the workflow refers to its app; the proxy must not pin them
    del app
    gc.collect()
    assert current_app() is None


def test_repr_names_the_function_and_never_needs_an_app() -> None:
    task = shared_task(add)
    assert repr(task) == f"<shared task {__name__}.add>"


def test_proxy_looks_like_the_function() -> None:
    task = shared_task(add)
    assert task.__name__ == "add"
    assert task.__doc__ == "Adds."
    assert inspect.signature(task) == inspect.signature(add)


def test_dunder_probes_do_not_need_an_app() -> None:
    task = shared_task(add)
    assert not hasattr(task, "__no_such_dunder__")  # AttributeError, not ConfigurationError


def test_redeclaring_a_name_replaces_it_for_later_apps() -> None:
    shared_task(name="job")(lambda: "old")
    shared_task(name="job")(lambda: "new")
    app = FakeApp("a")
    assert app.registered["job"].fn() == "new"
    assert app.calls == 1


def test_errors_from_app_task_propagate() -> None:
    class StrictApp(FakeApp):
        def task(self, **options: Any) -> Callable[[Callable[..., Any]], FakeWorkflow]:
            raise ConfigurationError(f"unknown option {sorted(options)}")

    app = StrictApp("strict")
    assert current_app() is app
    with pytest.raises(ConfigurationError, match="unknown option"):
        shared_task(bogus=1)(add)


def test_invalid_uses() -> None:
    with pytest.raises(ConfigurationError, match="got 42"):
        shared_task(42)  # type: ignore[call-overload]

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def task(self, **options: Any) -> Any:
            raise AssertionError

    with pytest.raises(ConfigurationError, match="cannot register app"):
        register_app(Unhashable())


def test_real_taskflow_app_registers_shared_tasks(tmp_path: Path) -> None:
    from taskflow import Taskflow

    @shared_task(name="shared.real")
    def real(x: int) -> int:
        return x * 2

    app = Taskflow("shared-test", database_url=f"sqlite:///{tmp_path / 'never-opened.db'}")
    register_app(app)  # Taskflow.__init__ does this too; a second time is harmless
    assert "shared.real" in app._workflows
    assert real.name == "shared.real"


# -- autodiscover --------------------------------------------------------------------------


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Create a uniquely named package on sys.path with the given modules; return its name.
    Everything imported from it is removed from sys.modules afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made: list[str] = []

    def make(modules: dict[str, str]) -> str:
        name = f"tf_pkg_{uuid.uuid4().hex[:10]}"
        root = tmp_path / name
        root.mkdir()
        (root / "__init__.py").write_text("")
        for module, body in modules.items():
            (root / f"{module}.py").write_text(textwrap.dedent(body))
        made.append(name)
        return name

    yield make
    for module in list(sys.modules):
        if any(module == name or module.startswith(f"{name}.") for name in made):
            del sys.modules[module]


def test_autodiscover_imports_tasks_modules(make_package: Callable[..., str]) -> None:
    body = """
        from taskflow.shared import shared_task

        @shared_task
        def ping() -> str:
            return "pong"
    """
    first = make_package({"tasks": body})
    second = make_package({"tasks": body})
    app = FakeApp("a")
    assert autodiscover([first, second]) == [f"{first}.tasks", f"{second}.tasks"]
    assert {f"{first}.tasks.ping", f"{second}.tasks.ping"} <= set(app.registered)


def test_autodiscover_skips_packages_without_the_module(make_package: Callable[..., str]) -> None:
    with_tasks = make_package({"tasks": "VALUE = 1\n"})
    without = make_package({"models": "VALUE = 2\n"})
    assert autodiscover([without, with_tasks, with_tasks]) == [f"{with_tasks}.tasks"]


def test_autodiscover_custom_related_name(make_package: Callable[..., str]) -> None:
    package = make_package({"jobs": "VALUE = 1\n"})
    assert autodiscover([package], related_name="jobs") == [f"{package}.jobs"]
    assert autodiscover([package]) == []


def test_autodiscover_plain_module_is_skipped(make_package: Callable[..., str]) -> None:
    package = make_package({"models": "VALUE = 1\n"})
    assert autodiscover([f"{package}.models"]) == []


def test_missing_package_is_a_configuration_error() -> None:
    name = f"tf_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(ConfigurationError, match=name) as info:
        autodiscover([name])
    assert isinstance(info.value.__cause__, ImportError)


def test_import_error_inside_tasks_module_propagates(make_package: Callable[..., str]) -> None:
    package = make_package({"tasks": "import tf_definitely_not_installed_dependency\n"})
    with pytest.raises(ConfigurationError, match=f"{package}.tasks") as info:
        autodiscover([package])
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert info.value.__cause__.name == "tf_definitely_not_installed_dependency"


def test_other_import_errors_inside_tasks_module_propagate(
    make_package: Callable[..., str],
) -> None:
    package = make_package({"tasks": "from os import no_such_name\n"})
    with pytest.raises(ConfigurationError, match=f"{package}.tasks") as info:
        autodiscover([package])
    assert isinstance(info.value.__cause__, ImportError)


def test_other_errors_inside_tasks_module_are_not_hidden(
    make_package: Callable[..., str],
) -> None:
    package = make_package({"tasks": "raise RuntimeError('broken module')\n"})
    with pytest.raises(RuntimeError, match="broken module"):
        autodiscover([package])


@pytest.mark.parametrize(
    ("packages", "related_name", "shown"),
    [
        ("shop.orders", "tasks", "'shop.orders'"),
        ([""], "tasks", "''"),
        ([None], "tasks", "None"),
        (["shop"], "", "''"),
        (["shop"], "bad.name", "'bad.name'"),
    ],
)
def test_autodiscover_invalid_arguments(packages: Any, related_name: Any, shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        autodiscover(packages, related_name)
    assert shown in str(info.value)
