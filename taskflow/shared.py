"""App-less task registration (``@shared_task``) and autodiscovery of ``tasks`` modules.

A reusable package cannot import the project's app, so it declares its tasks with
``@shared_task``. Every :class:`~taskflow.app.Taskflow` app registers itself here when it is
created, and then gets every shared task, past and future. The :class:`SharedTask` a module
holds forwards calls and attributes (``delay``, ``apply_async``, ``name``, ...) to the
workflow registered on the *current* app, as Celery's shared tasks do.

This module sits in the same layer as :mod:`taskflow.app` but never imports it at run time:
the app imports this module, and only needs to provide ``task(**options)``.
"""

from __future__ import annotations

import functools
import importlib
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from taskflow.errors import ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")


class AppLike(Protocol):
    """What shared tasks need from an app: Celery's ``app.task(**options)`` decorator
    factory. :class:`~taskflow.app.Taskflow` provides it."""

    @property
    def task(self) -> Callable[..., Any]:
        """``task(**options)`` returns a decorator that registers a function."""
        ...


class _Registry:
    """Every shared task and every live app, guarded by one lock.

    The lock is held while a shared task registers on an app, so each (task, app) pair is
    registered exactly once even when apps are created and tasks defined concurrently. Apps
    are held weakly: defining a shared task must not keep an app (and its connections)
    alive, and ``current_app()`` must not return an app nobody uses any more.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tasks: dict[str, SharedTask[..., Any]] = {}
        # app -> registration sequence number; the highest live one is the default app.
        self.apps: weakref.WeakKeyDictionary[AppLike, int] = weakref.WeakKeyDictionary()
        self.sequence = 0
        self.current: weakref.ref[AppLike] | None = None


_registry = _Registry()


class SharedTask(Generic[P, R]):
    """What ``@shared_task`` returns: a stand-in for the task on the current app.

    Calling it calls the workflow registered on :func:`current_app`; any other attribute
    (``delay``, ``apply_async``, ``name``, ...) is that workflow's. With no app yet, using it
    raises :class:`ConfigurationError`.
    """

    def __init__(self, fn: Callable[P, R], options: dict[str, Any]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        """The decorated function."""
        self.options = dict(options)
        """The options given to ``@shared_task``, passed on to ``app.task(**options)``."""
        # Per app, what `app.task` returned; a weak reference when possible, because the
        # workflow refers to its app, and a strong one here would keep every app alive.
        self._on_app: weakref.WeakKeyDictionary[AppLike, Callable[[], Any]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def key(self) -> str:
        """The name this task registers under unless the app renames it: the ``name``
        option, else ``module.qualname``."""
        name = self.options.get("name")
        return name if isinstance(name, str) and name else f"{self.fn.__module__}.{_qual(self.fn)}"

    def __repr__(self) -> str:
        return f"<shared task {self.fn.__module__}.{_qual(self.fn)}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._resolve()(*args, **kwargs)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this proxy lacks. Dunder probes (copy, pickle, inspect,
        # pytest collection) must get AttributeError, not an app lookup that may fail.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(self._resolve(), name)

    def registered_on(self, app: AppLike) -> Any:
        """The object ``app.task`` made of this task on ``app`` (registering it now if that
        has not happened yet)."""
        with _registry.lock:
            ref = self._on_app.get(app)
            target = ref() if ref is not None else None
            if target is None:
                target = app.task(**self.options)(self.fn)
                try:
                    ref = weakref.ref(target)
                except TypeError:
                    # Not weakly referenceable: hold it strongly. If it refers to its app,
                    # that app then lives as long as this shared task: a leak, not an error.
                    ref = functools.partial(_identity, target)
                self._on_app[app] = ref
            return target

    def _resolve(self) -> Any:
        app = current_app()
        if app is None:
            raise ConfigurationError(
                f"shared task {self.key!r} is not bound to an app: a Taskflow app must be "
                "created first (app = Taskflow(...)) before the task is called or used"
            )
        return self.registered_on(app)


def _identity(value: Any) -> Any:
    return value


def _qual(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else repr(fn)


@overload
def shared_task(fn: Callable[P, R], /, **options: Any) -> SharedTask[P, R]: ...


@overload
def shared_task(
    fn: None = None, /, **options: Any
) -> Callable[[Callable[P, R]], SharedTask[P, R]]: ...


def shared_task(
    fn: Callable[P, R] | None = None, /, **options: Any
) -> SharedTask[P, R] | Callable[[Callable[P, R]], SharedTask[P, R]]:
    """Declare a task without an app: ``@shared_task`` or ``@shared_task(name=..., bind=True,
    ...)``; the options are those of ``app.task``.

    The task is registered on every app that exists now and on every app created later.
    Declaring the same name again (a module imported twice, or reloaded) replaces the
    earlier declaration for apps created afterwards.
    """

    def declare(f: Callable[P, R]) -> SharedTask[P, R]:
        if not callable(f):
            raise ConfigurationError(f"@shared_task decorates a function, got {f!r}")
        task: SharedTask[P, R] = SharedTask(f, options)
        with _registry.lock:
            _registry.tasks[task.key] = task
            for app in _live_apps():
                task.registered_on(app)
        return task

    if fn is not None:
        return declare(fn)
    return declare


def register_app(app: AppLike) -> None:
    """Record a new app (``Taskflow.__init__`` calls this) and register every shared task
    on it. Registering the same app again does nothing."""
    with _registry.lock:
        try:
            if app in _registry.apps:
                return
            _registry.apps[app] = _registry.sequence + 1
        except TypeError as exc:
            raise ConfigurationError(
                f"cannot register app {app!r}: an app must be hashable and weakly referenceable"
            ) from exc
        _registry.sequence += 1
        for task in list(_registry.tasks.values()):
            task.registered_on(app)


def set_current_app(app: AppLike | None) -> None:
    """Make ``app`` the one shared tasks use (None: fall back to the latest app created).
    The current app is process-wide, not per thread, so a worker's threads all see it."""
    with _registry.lock:
        if app is None:
            _registry.current = None
            return
        try:
            _registry.current = weakref.ref(app)
        except TypeError as exc:
            raise ConfigurationError(
                f"cannot make {app!r} the current app: it is not weakly referenceable"
            ) from exc


def current_app() -> AppLike | None:
    """The app shared tasks use: the one last passed to :func:`set_current_app` while it is
    alive, else the most recently registered live app, else None."""
    with _registry.lock:
        if _registry.current is not None:
            app = _registry.current()
            if app is not None:
                return app
        apps = _live_apps()
        return apps[-1] if apps else None


def _live_apps() -> list[AppLike]:
    # Oldest first; copying the items takes strong references, so none vanishes meanwhile.
    return [app for app, _ in sorted(_registry.apps.items(), key=lambda item: item[1])]


def autodiscover(packages: Iterable[str], related_name: str = "tasks") -> list[str]:
    """Import ``<package>.<related_name>`` for each package (Celery's autodiscovery) and
    return the names of the modules imported, in order.

    A package without such a submodule is skipped. A package that cannot be imported, or an
    ImportError raised while importing an existing ``tasks`` module, raises
    :class:`ConfigurationError` naming the module (the original error is its cause).
    """
    if isinstance(packages, str):
        raise ConfigurationError(
            f"autodiscover takes a list of package names, got the string {packages!r} "
            f"(write [{packages!r}])"
        )
    if not isinstance(related_name, str) or not related_name.isidentifier():
        raise ConfigurationError(
            f"related_name must be a module name such as 'tasks', got {related_name!r}"
        )
    imported: list[str] = []
    for package in packages:
        if not isinstance(package, str) or not package:
            raise ConfigurationError(f"a package name must be a non-empty string, got {package!r}")
        module_name = f"{package}.{related_name}"
        if module_name in imported:
            continue
        try:
            importlib.import_module(package)
        except ImportError as exc:
            raise ConfigurationError(
                f"cannot import package {package!r} to discover its {related_name!r} module: {exc}"
            ) from exc
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # no such submodule (or the package is a plain module): nothing to find
            raise ConfigurationError(f"importing {module_name!r} failed: {exc}") from exc
        except ImportError as exc:
            raise ConfigurationError(f"importing {module_name!r} failed: {exc}") from exc
        imported.append(module_name)
    return imported


__all__ = [
    "AppLike",
    "SharedTask",
    "autodiscover",
    "current_app",
    "register_app",
    "set_current_app",
    "shared_task",
]
