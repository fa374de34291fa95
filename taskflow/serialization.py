"""msgspec JSON for arguments, results and errors. No pickle, ever.

Values are decoded with the type hints of the function that produced or receives them, so a
``datetime`` argument or a dataclass result comes back as itself on replay. Without a hint a
value comes back as plain JSON data. A workflow always sees the decoded form, on its first run
as on a replay, so both behave alike.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import traceback
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import msgspec.inspect

from taskflow.errors import SerializationError, WorkflowError
from taskflow.models import ErrorInfo

_encoder = msgspec.json.Encoder()
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def encode(value: object, what: str = "value") -> str:
    """Serialize ``value`` to a JSON string, or raise :class:`SerializationError` naming
    ``what`` (e.g. "argument 'order' of workflow 'orders.process'")."""
    try:
        return _encoder.encode(value).decode()
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(
            f"cannot serialize {what} of type {type(value).__qualname__}: {exc}. Supported: "
            "JSON types, datetime, date, UUID, Decimal, bytes, dataclasses, msgspec Structs"
        ) from exc


@functools.lru_cache(maxsize=1024)
def _decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(tp, strict=False)


def usable_type(tp: Any) -> Any:
    """``tp`` if msgspec can decode JSON into it, else ``Any`` (so an exotic hint, such as a
    ``Path`` anywhere inside it, never breaks a workflow: its values come back as plain JSON
    data)."""
    if tp is Any or tp is inspect.Parameter.empty:
        return Any
    try:
        info = msgspec.inspect.type_info(tp)
    except (TypeError, ValueError):
        return Any
    return Any if _has_custom(info, set()) else tp


def _has_custom(info: msgspec.inspect.Type, seen: set[int]) -> bool:
    if isinstance(info, msgspec.inspect.CustomType):
        return True
    if id(info) in seen:  # recursive types
        return False
    seen.add(id(info))
    children: list[Any] = []
    for attr in ("item_type", "key_type", "value_type"):
        child = getattr(info, attr, None)
        if child is not None:
            children.append(child)
    children.extend(getattr(info, "item_types", ()) or ())
    children.extend(getattr(info, "types", ()) or ())
    children.extend(f.type for f in getattr(info, "fields", ()) or ())
    return any(_has_custom(c, seen) for c in children)


def decode(raw: str | bytes, tp: Any = Any) -> Any:
    """Parse JSON into ``tp`` (``Any`` gives plain JSON data)."""
    try:
        if tp is Any:
            return _any_decoder.decode(raw)
        return _decoder(tp).decode(raw)
    except msgspec.DecodeError as exc:
        raise SerializationError(f"cannot decode stored value as {tp!r}: {exc}") from exc


def convert(value: object, tp: Any) -> Any:
    """Turn plain JSON data into ``tp``."""
    if tp is Any:
        return value
    try:
        return msgspec.convert(value, tp, strict=False)
    except msgspec.ValidationError as exc:
        raise SerializationError(f"cannot convert {value!r} to {tp!r}: {exc}") from exc


class Signature:
    """How to encode and decode one function's arguments and result.

    Hints are resolved on first use, not at decoration time, so they may name classes defined
    later in the module.
    """

    def __init__(self, fn: Callable[..., Any], skip_first: bool = False) -> None:
        self._fn = fn
        self._skip_first = skip_first
        self._resolved = False
        self._positional: list[tuple[str, Any]] = []
        self._var_positional: Any = None
        self._keyword: dict[str, Any] = {}
        self._var_keyword: Any = None
        self._result: Any = Any

    def _resolve(self) -> None:
        if self._resolved:
            return
        try:
            hints = typing.get_type_hints(self._fn)
        except Exception:  # unresolvable forward references: fall back to plain JSON
            hints = {}
        params = list(inspect.signature(self._fn).parameters.values())
        if self._skip_first and params:
            params = params[1:]
        for p in params:
            tp = usable_type(hints.get(p.name, Any))
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                self._positional.append((p.name, tp))
                self._keyword[p.name] = tp
            elif p.kind is p.VAR_POSITIONAL:
                self._var_positional = tp
            elif p.kind is p.KEYWORD_ONLY:
                self._keyword[p.name] = tp
            else:
                self._var_keyword = tp
        self._result = usable_type(hints.get("return", Any))
        self._resolved = True

    @property
    def result_type(self) -> Any:
        """The type results decode into."""
        self._resolve()
        return self._result

    def encode_inputs(self, args: Sequence[object], kwargs: Mapping[str, object], what: str) -> str:
        """Serialize a call's arguments, naming the culprit on failure."""
        try:
            return _encoder.encode({"args": args, "kwargs": kwargs}).decode()
        except (TypeError, ValueError, OverflowError):
            pass
        # Find which argument is at fault so the error can name it.
        self._resolve()
        for i, a in enumerate(args):
            name = self._positional[i][0] if i < len(self._positional) else f"*args[{i}]"
            encode(a, f"argument {name!r} of {what}")
        for k, v in kwargs.items():
            encode(v, f"argument {k!r} of {what}")
        raise SerializationError(f"cannot serialize the arguments of {what}")

    def decode_inputs(self, raw: str) -> tuple[list[Any], dict[str, Any]]:
        """Parse stored arguments into the types the function declares."""
        self._resolve()
        data = decode(raw)
        args_in: list[Any] = data.get("args", [])
        kwargs_in: dict[str, Any] = data.get("kwargs", {})
        args: list[Any] = []
        for i, a in enumerate(args_in):
            tp = self._positional[i][1] if i < len(self._positional) else self._var_positional
            args.append(convert(a, tp if tp is not None else Any))
        kwargs: dict[str, Any] = {}
        for k, v in kwargs_in.items():
            tp = self._keyword.get(k, self._var_keyword)
            kwargs[k] = convert(v, tp if tp is not None else Any)
        return args, kwargs

    def decode_result(self, raw: str) -> Any:
        """Parse a stored result into the declared return type."""
        return decode(raw, self.result_type)


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def encode_error(exc: BaseException) -> str:
    """Serialize an exception as type, message, traceback (and its args when they are JSON)."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    args: list[object] | None
    try:
        _encoder.encode(list(exc.args))
        args = list(exc.args)
    except (TypeError, ValueError, OverflowError):
        args = None
    info = ErrorInfo(type_name=qualified_name(type(exc)), message=str(exc), traceback=tb, args=args)
    return _encoder.encode(info).decode()


def _import_class(type_name: str) -> type[BaseException] | None:
    # Nested classes have dots in their qualname: walk down from the longest importable prefix.
    parts = type_name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name, qualname = ".".join(parts[:cut]), ".".join(parts[cut:])
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in qualname.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return obj
        return None
    return None


def rebuild_error(info: ErrorInfo) -> BaseException:
    """Re-create a recorded exception as its original type when importable, else a
    :class:`WorkflowError` carrying type, message and traceback."""
    cls = _import_class(info.type_name)
    exc: BaseException | None = None
    if cls is not None:
        try:
            exc = cls(*info.args) if info.args is not None else cls(info.message)
        except Exception:
            try:
                exc = cls(info.message)
            except Exception:
                exc = None
    if exc is None:
        return WorkflowError(info.type_name, info.message, info.traceback)
    if info.traceback:
        exc.add_note("Traceback recorded where it was raised:\n" + info.traceback.rstrip())
    return exc


def decode_error(raw: str) -> BaseException:
    """Parse a stored error column back into an exception instance."""
    return rebuild_error(msgspec.json.decode(raw, type=ErrorInfo))


__all__ = [
    "Signature",
    "convert",
    "decode",
    "decode_error",
    "encode",
    "encode_error",
    "qualified_name",
    "rebuild_error",
    "usable_type",
]
