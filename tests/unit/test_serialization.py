"""msgspec JSON for arguments, results and errors: round trips by type hint, clear failures."""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from taskflow.errors import SerializationError, TaskflowError, WorkflowError
from taskflow.models import ErrorInfo
from taskflow.serialization import (
    Signature,
    convert,
    decode,
    decode_error,
    encode,
    encode_error,
    qualified_name,
    rebuild_error,
    usable_type,
)


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: str = "p"


class Order(msgspec.Struct):
    id: int
    placed: datetime
    amount: Decimal
    tags: list[str] = []


@dataclasses.dataclass
class Nested:
    points: list[Point]
    order: Order | None
    when: date


class PaymentError(Exception):
    """An importable custom error (module-level)."""


class TwoArgs(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class NeedsKeyword(Exception):
    def __init__(self, *, code: int) -> None:
        super().__init__(f"code {code}")
        self.code = code


class Outer:
    class InnerError(Exception):
        """Nested class: its qualname has a dot."""


UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
AWARE = datetime(2024, 3, 31, 1, 59, 59, 123456, tzinfo=UTC)
OFFSET = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30)))
NAIVE = datetime(2024, 1, 2, 3, 4, 5)

ROUND_TRIPS: list[tuple[Any, Any]] = [
    (None, None),
    (True, bool),
    (0, int),
    (-(2**63), int),
    (1.5, float),
    ("ünïcødé ✓ \x00 \"'", str),
    ([1, "a", None], list[Any]),
    ({"a": {"b": [1, 2]}}, dict[str, Any]),
    (AWARE, datetime),
    (OFFSET, datetime),
    (NAIVE, datetime),
    (date(2024, 2, 29), date),
    (UID, uuid.UUID),
    (Decimal("1234567890.123456789"), Decimal),
    (b"\x00\x01\xffbytes", bytes),
    (Point(1, 2.5, "q"), Point),
    (Order(id=7, placed=AWARE, amount=Decimal("9.99"), tags=["x"]), Order),
    (
        Nested(
            points=[Point(1, 2.0)],
            order=Order(id=1, placed=NAIVE, amount=Decimal("0.1")),
            when=date(2000, 1, 1),
        ),
        Nested,
    ),
    ((1, "two"), tuple[int, str]),
    ({1, 2, 3}, set[int]),
]


@pytest.mark.parametrize(("value", "tp"), ROUND_TRIPS, ids=lambda v: type(v).__name__)
def test_encode_decode_round_trip(value: Any, tp: Any) -> None:
    raw = encode(value)
    assert isinstance(raw, str)
    back = decode(raw, tp if tp is not None else Any)
    assert back == value
    assert type(back) is type(value)


def test_aware_datetime_keeps_its_offset() -> None:
    back = decode(encode(OFFSET), datetime)
    assert back.utcoffset() == timedelta(hours=5, minutes=30)
    assert decode(encode(NAIVE), datetime).tzinfo is None


def test_without_a_type_hint_values_come_back_as_plain_json() -> None:
    assert decode(encode(Point(1, 2.0))) == {"x": 1, "y": 2.0, "label": "p"}
    assert decode(encode(UID)) == str(UID)
    assert decode(encode(Decimal("1.10"))) == "1.10"
    assert decode(encode(date(2024, 1, 1))) == "2024-01-01"


def everything(
    n: int,
    s: str,
    when: datetime,
    day: date,
    uid: uuid.UUID,
    price: Decimal,
    blob: bytes,
    point: Point,
    order: Order,
    free: Any,
    *rest: Point,
    flag: bool = False,
    opt: Decimal | None = None,
    **extra: uuid.UUID,
) -> Nested:
    raise NotImplementedError


def test_signature_round_trips_arguments_by_type_hint() -> None:
    sig = Signature(everything)
    order = Order(id=3, placed=AWARE, amount=Decimal("10.50"))
    args = (
        5,
        "s",
        AWARE,
        date(2024, 5, 6),
        UID,
        Decimal("0.30"),
        b"\x00raw",
        Point(1, 1.5),
        order,
        {"any": [1]},
        Point(2, 0.5),
        Point(3, 0.25),
    )
    kwargs = {"flag": True, "opt": Decimal("2.5"), "other": UID}
    raw = sig.encode_inputs(args, kwargs, "workflow 'everything'")
    got_args, got_kwargs = sig.decode_inputs(raw)
    assert got_args == list(args)
    assert [type(a) for a in got_args] == [type(a) for a in args]
    assert got_kwargs == kwargs
    assert [type(v) for v in got_kwargs.values()] == [bool, Decimal, uuid.UUID]


def test_signature_decodes_result_by_return_hint() -> None:
    sig = Signature(everything)
    value = Nested(points=[Point(1, 2.0)], order=None, when=date(2024, 1, 1))
    assert sig.result_type is Nested
    assert sig.decode_result(encode(value)) == value


def test_signature_without_hints_gives_plain_json() -> None:
    def untyped(a, b=None):  # type: ignore[no-untyped-def]
        return a

    sig = Signature(untyped)
    raw = sig.encode_inputs((Point(1, 2.0),), {"b": UID}, "workflow 'untyped'")
    assert sig.decode_inputs(raw) == ([{"x": 1, "y": 2.0, "label": "p"}], {"b": str(UID)})
    assert sig.result_type is Any
    assert sig.decode_result(encode(date(2024, 1, 1))) == "2024-01-01"


def test_signature_skip_first_ignores_self() -> None:
    def bound(self: object, when: datetime) -> None:
        pass

    sig = Signature(bound, skip_first=True)
    raw = sig.encode_inputs((AWARE,), {}, "task 'bound'")
    assert sig.decode_inputs(raw) == ([AWARE], {})


def test_signature_resolves_hints_lazily() -> None:
    # The annotation names a class that does not exist yet when the Signature is made.
    namespace: dict[str, Any] = {}
    exec(
        "from __future__ import annotations\ndef f(p: Later) -> Later: ...\n",
        namespace,
    )
    sig = Signature(namespace["f"])
    namespace["Later"] = Point
    raw = sig.encode_inputs((Point(1, 2.0),), {}, "workflow 'f'")
    assert sig.decode_inputs(raw) == ([Point(1, 2.0)], {})
    assert sig.result_type is Point


def test_signature_with_unresolvable_hints_falls_back_to_plain_json() -> None:
    namespace: dict[str, Any] = {}
    exec("from __future__ import annotations\ndef f(p: Missing) -> Missing: ...\n", namespace)
    sig = Signature(namespace["f"])
    raw = sig.encode_inputs((Point(1, 2.0),), {}, "workflow 'f'")
    assert sig.decode_inputs(raw) == ([{"x": 1, "y": 2.0, "label": "p"}], {})


def test_usable_type() -> None:
    assert usable_type(Any) is Any
    assert usable_type(inspect.Parameter.empty) is Any
    assert usable_type(int) is int
    assert usable_type(Point) is Point
    assert usable_type(list[Order]) == list[Order]


class Unserializable:
    pass


@pytest.mark.parametrize(
    "bad", [Unserializable(), object(), lambda: None, Exception("no")], ids=type
)
def test_unsupported_argument_names_the_argument(bad: object) -> None:
    def wf(order_id: int, payload: object, *rest: object, flag: object = None) -> None:
        pass

    sig = Signature(wf)
    what = "workflow 'orders.process'"
    with pytest.raises(SerializationError) as info:
        sig.encode_inputs((1, bad), {}, what)
    message = str(info.value)
    assert "'payload'" in message
    assert what in message
    assert type(bad).__qualname__ in message

    with pytest.raises(SerializationError, match=r"'\*args\[3\]'"):
        sig.encode_inputs((1, 2, 3, bad), {}, what)
    with pytest.raises(SerializationError, match="'flag'"):
        sig.encode_inputs((1, 2), {"flag": bad}, what)


def test_serialization_error_is_a_taskflow_error() -> None:
    with pytest.raises(TaskflowError):
        encode(object(), "result of workflow 'w'")
    with pytest.raises(SerializationError, match="result of workflow 'w'"):
        encode(object(), "result of workflow 'w'")


def test_decode_of_bad_data_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError):
        decode("{not json")
    with pytest.raises(SerializationError):
        decode('"not a date"', date)
    with pytest.raises(SerializationError):
        convert({"x": "not an int"}, Point)
    assert convert({"x": 1, "y": 2}, Point) == Point(1, 2)
    assert convert([1], Any) == [1]


# -- errors ------------------------------------------------------------------------------


def raised(exc: BaseException) -> BaseException:
    """``exc`` after it was raised, so it carries a traceback."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_builtin_error_round_trips_with_traceback_note() -> None:
    back = decode_error(encode_error(raised(ValueError("bad value 42"))))
    assert type(back) is ValueError
    assert back.args == ("bad value 42",)
    notes = "\n".join(getattr(back, "__notes__", []))
    assert "Traceback" in notes
    assert "raised" in notes  # the function it was raised in
    assert "ValueError: bad value 42" in notes


@pytest.mark.parametrize(
    "exc",
    [
        PaymentError("card declined"),
        TwoArgs(402, "payment required"),
        Outer.InnerError("nested"),
        KeyError("missing-key"),
        SerializationError("taskflow's own"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_importable_error_is_recreated_as_its_type(exc: BaseException) -> None:
    back = decode_error(encode_error(raised(exc)))
    assert type(back) is type(exc)
    assert back.args == exc.args
    assert str(back) == str(exc)


def test_recreated_error_keeps_constructor_state() -> None:
    back = decode_error(encode_error(raised(TwoArgs(402, "payment required"))))
    assert isinstance(back, TwoArgs)
    assert (back.code, back.reason) == (402, "payment required")


def test_error_with_unserializable_args_is_rebuilt_from_its_message() -> None:
    back = decode_error(encode_error(raised(PaymentError(object()))))
    assert type(back) is PaymentError
    assert "object object at" in str(back)


def test_unimportable_error_becomes_workflow_error() -> None:
    class LocalError(Exception):
        pass

    original = raised(LocalError("only here"))
    back = decode_error(encode_error(original))
    assert type(back) is WorkflowError
    assert isinstance(back, WorkflowError)
    assert back.type_name == qualified_name(LocalError)
    assert "<locals>" in back.type_name
    assert back.message == "only here"
    assert "Traceback" in back.remote_traceback
    assert "only here" in back.remote_traceback
    assert back.type_name in str(back)
    assert "only here" in str(back)


def test_error_whose_constructor_refuses_becomes_workflow_error() -> None:
    back = decode_error(encode_error(raised(NeedsKeyword(code=7))))
    assert isinstance(back, WorkflowError)
    assert back.type_name == qualified_name(NeedsKeyword)
    assert back.message == "code 7"


@pytest.mark.parametrize(
    "type_name",
    [
        "no_such_module_xyz.SomeError",
        f"{__name__}.NoSuchError",
        "builtins.int",  # importable, but not an exception
        "NoDots",
    ],
)
def test_unknown_type_names_become_workflow_error(type_name: str) -> None:
    info = ErrorInfo(type_name=type_name, message="m", traceback="tb")
    back = rebuild_error(info)
    assert isinstance(back, WorkflowError)
    assert back.type_name == type_name
    assert back.message == "m"
    assert back.remote_traceback == "tb"


def test_encoded_error_is_json_with_type_message_traceback() -> None:
    raw = encode_error(raised(PaymentError("declined")))
    info = msgspec.json.decode(raw, type=ErrorInfo)
    assert info.type_name == f"{__name__}.PaymentError"
    assert info.message == "declined"
    assert "Traceback" in info.traceback
    assert info.args == ["declined"]


def test_qualified_name() -> None:
    assert qualified_name(ValueError) == "builtins.ValueError"
    assert qualified_name(Outer.InnerError) == f"{__name__}.Outer.InnerError"


@dataclasses.dataclass
class _HasPath:
    where: pathlib.Path


def test_usable_type_falls_back_to_any_for_types_msgspec_cannot_decode() -> None:
    assert usable_type(pathlib.Path) is Any
    assert usable_type(list[pathlib.Path]) is Any
    assert usable_type(pathlib.Path | None) is Any
    assert usable_type(_HasPath) is Any


def test_an_exotic_hint_decodes_as_plain_json() -> None:
    def fn(where: pathlib.Path) -> pathlib.Path:
        return where

    sig = Signature(fn)
    raw = sig.encode_inputs(["/tmp/x"], {}, "workflow 'fn'")
    assert sig.decode_inputs(raw) == (["/tmp/x"], {})
    assert sig.decode_result('"/tmp/y"') == "/tmp/y"
