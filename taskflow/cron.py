"""Cron schedules: parsing, Celery's ``crontab``, and DST-correct fire times in any IANA zone.

Stdlib only (``zoneinfo``, ``datetime``, ``calendar``). Every time this module takes or
returns is an ``int`` of milliseconds since the Unix epoch (UTC); fire times are whole seconds.
The fire-time rules, DST included, are written down in ``docs/cron_rules.md``.
"""

from __future__ import annotations

import bisect
import calendar
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from taskflow.errors import ConfigurationError

__all__ = [
    "Timetable",
    "crontab",
    "interval_expression",
    "schedule_expression",
    "zone",
]

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DAY_NAMES = {name: n for n, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

# (name, lowest, highest, names); day-of-week accepts 7 as a second Sunday.
_SECOND = ("second", 0, 59, None)
_MINUTE = ("minute", 0, 59, None)
_HOUR = ("hour", 0, 23, None)
_DOM = ("day-of-month", 1, 31, None)
_MONTH = ("month", 1, 12, _MONTH_NAMES)
_DOW = ("day-of-week", 0, 7, _DAY_NAMES)
_Spec = tuple[str, int, int, dict[str, int] | None]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD_COUNT_HELP = (
    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first)"
)
_EVERY = re.compile(r"@every\s+(\d+)([smh]?)", re.IGNORECASE)
_EVERY_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
_EXTENSION = re.compile(r"(\d*L|\d+W|LW|L-\d+|.*#.*)", re.IGNORECASE)
_DAYS_IN_MONTH_MAX = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)  # naive: wall-clock times carry no zone
_ONE_SECOND = timedelta(seconds=1)
# Keep clear of datetime's year 1 and year 9999 limits when converting instants.
_MIN_S = (datetime(2, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_SECOND
_MAX_S = (datetime(9999, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_SECOND
# The IANA database never changes a zone's offset twice within ~4 days (the closest pair, in
# Africa/Freetown, is 3.99 days apart) and never by more than 24 hours at once (Pacific/Apia,
# 2011). So probing the offset once a day finds every transition, and a transition that can
# still shape the present lies less than 25 hours back.
_PROBE_STEP = 86_400
_LOOKBACK = 90_000


class _FieldError(Exception):
    """One field is wrong; the caller adds which expression or argument it came from."""

    def __init__(self, field: str, token: str, reason: str) -> None:
        super().__init__(f"{field} {token!r} {reason}")


def _number(token: str, spec: _Spec, whole: str) -> int:
    name, lo, hi, names = spec
    if token.isascii() and token.isdigit():
        value = int(token)
    elif names is not None and token.lower() in names:
        value = names[token.lower()]
    else:
        what = "a number" if names is None else f"a number or a name ({', '.join(names)})"
        raise _FieldError(name, token if token else whole, f"is not {what}")
    if not lo <= value <= hi:
        raise _FieldError(name, token, f"is out of range {lo}-{hi}")
    return value


def _parse_field(text: str, spec: _Spec) -> tuple[int, ...]:
    """The sorted values one cron field allows."""
    name, lo, hi, _names = spec
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise _FieldError(name, text, "has an empty list item")
        if _EXTENSION.fullmatch(part):
            raise _FieldError(name, part, "uses L, W or #, which are not supported")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
                raise _FieldError(name, part, "needs a whole step of at least 1 after '/'")
            step = int(step_text)
        # '*' means every value, so day-of-week's second Sunday (7) is left out of it.
        top = 6 if name == "day-of-week" else hi
        if base == "*" or (base == "?" and name in ("day-of-month", "day-of-week")):
            start, end = lo, top
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, spec, part), _number(last, spec, part)
            if start > end:
                raise _FieldError(name, part, "is a range that runs backwards")
        else:
            start = _number(base, spec, part)
            end = max(top, start) if slash else start  # '7/2' in day-of-week is Sunday
        values.update(range(start, end + 1, step))
    if name == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values))


@dataclass(frozen=True)
class _Fields:
    """A parsed cron expression: the allowed values of each field, and how days combine."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    either_day: bool  # both day fields restricted: Vixie cron matches a day on EITHER

    def day_matches(self, year: int, month: int, day: int) -> bool:
        """Whether the date passes the day-of-month and day-of-week fields."""
        weekday = (calendar.weekday(year, month, day) + 1) % 7  # cron counts from Sunday
        if self.either_day:
            return day in self.days or weekday in self.weekdays
        return day in self.days and weekday in self.weekdays

    def next_wall(self, wall: datetime) -> datetime | None:
        """The first matching wall-clock time at or after ``wall`` (naive), by jumping field by
        field instead of scanning seconds; None when nothing matches before year 9999."""
        y, mo, d, h, mi, s = wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second
        # A day-of-month like 29 in February may need a leap year; 100 years is far beyond any.
        for year in range(y, min(y + 100, 9999)):
            for month in self.months:
                if (year, month) < (y, mo):
                    continue
                same_month = (year, month) == (y, mo)
                for day in range(d if same_month else 1, calendar.monthrange(year, month)[1] + 1):
                    if not self.day_matches(year, month, day):
                        continue
                    found = self._time_in_day((h, mi, s) if same_month and day == d else (0, 0, 0))
                    if found is not None:
                        return datetime(year, month, day, *found)
        return None

    def _time_in_day(self, start: tuple[int, int, int]) -> tuple[int, int, int] | None:
        """The first matching (hour, minute, second) at or after ``start`` within one day."""
        h, mi, s = start
        for hour in self.hours[bisect.bisect_left(self.hours, h) :]:
            first_minute = mi if hour == h else 0
            for minute in self.minutes[bisect.bisect_left(self.minutes, first_minute) :]:
                first_second = s if (hour, minute) == (h, mi) else 0
                index = bisect.bisect_left(self.seconds, first_second)
                if index < len(self.seconds):
                    return hour, minute, self.seconds[index]
        return None


def _parse_cron(expression: str) -> _Fields:
    """Parse a 5- or 6-field cron string or a macro; raise ConfigurationError naming the field."""
    text = _MACROS.get(expression.lower(), expression) if expression.startswith("@") else expression
    if text.startswith("@"):
        raise ConfigurationError(
            f"invalid cron {expression!r}: unknown macro (use @yearly, @annually, @monthly, "
            "@weekly, @daily, @midnight, @hourly or '@every <seconds>')"
        )
    parts = text.split()
    if len(parts) not in (5, 6):
        raise ConfigurationError(
            f"invalid cron {expression!r}: {_FIELD_COUNT_HELP}, got {len(parts)}"
        )
    if len(parts) == 5:
        parts.insert(0, "0")
    specs = (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW)
    try:
        sec, mins, hours, days, months, weekdays = (
            _parse_field(part, spec) for part, spec in zip(parts, specs, strict=True)
        )
    except _FieldError as exc:
        raise ConfigurationError(f"invalid cron {expression!r}: {exc}") from None
    dom_star, dow_star = parts[3] in ("*", "?"), parts[5] in ("*", "?")
    fields = _Fields(sec, mins, hours, days, months, weekdays, not dom_star and not dow_star)
    if not fields.either_day and not any(
        day <= _DAYS_IN_MONTH_MAX[month] for month in months for day in days
    ):
        raise ConfigurationError(
            f"invalid cron {expression!r}: never fires (no month in the month field has any of "
            "the days in the day-of-month field)"
        )
    return fields


def _every_seconds(expression: str) -> int:
    """The seconds of an ``@every N[s|m|h]`` expression."""
    match = _EVERY.fullmatch(expression)
    if match is None or int(match.group(1)) < 1:
        raise ConfigurationError(
            f"invalid interval {expression!r}: intervals are whole seconds >= 1, written "
            "'@every 30', '@every 30s', '@every 5m' or '@every 2h'"
        )
    return int(match.group(1)) * _EVERY_UNITS[match.group(2).lower()]


# Celery's argument names, in the order of the cron fields they fill.
_CRONTAB_ARGS = (
    ("minute", _MINUTE),
    ("hour", _HOUR),
    ("day_of_month", _DOM),
    ("month_of_year", _MONTH),
    ("day_of_week", _DOW),
)


class crontab:  # Celery's name, lower-case on purpose for drop-in compatibility
    """A cron schedule built from Celery-style keyword arguments.

    Each argument is an int, a cron field string (``"*/15"``, ``"1-5"``, ``"mon-fri"``,
    ``"0,30"``) or an iterable of ints; all are checked at once. ``crontab(minute=0, hour=3)``
    fires at 03:00 every day; ``expression`` is the equivalent 5-field cron string.
    """

    __slots__ = ("_fields", "expression")

    def __init__(
        self,
        minute: int | str | Iterable[int] = "*",
        hour: int | str | Iterable[int] = "*",
        day_of_week: int | str | Iterable[int] = "*",
        day_of_month: int | str | Iterable[int] = "*",
        month_of_year: int | str | Iterable[int] = "*",
    ) -> None:
        given = {
            "minute": minute,
            "hour": hour,
            "day_of_month": day_of_month,
            "month_of_year": month_of_year,
            "day_of_week": day_of_week,
        }
        fields = [_crontab_field(arg, given[arg], spec) for arg, spec in _CRONTAB_ARGS]
        self._fields = tuple(fields)
        self.expression: str = " ".join(fields)
        """The equivalent 5-field cron string, e.g. ``"0 3 * * *"``."""
        _parse_cron(self.expression)  # day combinations that never fire

    def __str__(self) -> str:
        return self.expression

    def __repr__(self) -> str:
        args = [
            f"{arg}={text!r}"
            for (arg, _spec), text in zip(_CRONTAB_ARGS, self._fields, strict=True)
            if text != "*"
        ]
        return f"crontab({', '.join(args)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, crontab):
            return NotImplemented
        return self.expression == other.expression

    def __hash__(self) -> int:
        return hash(("crontab", self.expression))


def _crontab_field(arg: str, value: object, spec: _Spec) -> str:
    """One crontab() argument as cron field text, validated."""
    if isinstance(value, bool):
        text = None  # True is an int, but never a sensible minute
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = ",".join(item.strip() for item in value.strip().split(","))
        if not text or any(char.isspace() for char in text):
            text = None
    elif isinstance(value, Iterable):
        items = list(value)
        ok = items and all(isinstance(i, int) and not isinstance(i, bool) for i in items)
        text = ",".join(str(i) for i in items) if ok else None
    else:
        text = None
    if text is None:
        raise ConfigurationError(
            f"crontab({arg}={value!r}) is invalid: give an int, a cron field string such as "
            "'*/15', '1-5' or 'mon-fri', or a non-empty iterable of ints"
        )
    try:
        _parse_field(text, spec)
    except _FieldError as exc:
        raise ConfigurationError(f"crontab({arg}={value!r}) is invalid: {exc}") from None
    return text


def interval_expression(every: float | timedelta) -> str:
    """``"@every <seconds>"`` for an interval given in seconds or as a timedelta; intervals are
    whole seconds >= 1 (``interval_expression(30) == "@every 30"``)."""
    seconds: float | None = None
    if isinstance(every, timedelta):
        seconds = every.total_seconds() if every.microseconds == 0 else None
    elif isinstance(every, int | float) and not isinstance(every, bool):
        seconds = every
    if seconds is None or not math.isfinite(seconds) or seconds < 1 or seconds != int(seconds):
        raise ConfigurationError(
            f"invalid interval {every!r}: intervals are whole seconds >= 1 "
            "(an int, a whole float or a timedelta)"
        )
    return f"@every {int(seconds)}"


def schedule_expression(value: str | crontab | float | timedelta) -> str:
    """The stored expression string of anything a user may pass as a schedule: a cron string
    (checked, returned stripped with single spaces; macros kept as given), a ``crontab`` (its
    ``expression``) or an interval in seconds or as a timedelta (``"@every N"``)."""
    if isinstance(value, str):
        text = " ".join(value.split())
        if text.lower().startswith("@every"):
            return f"@every {_every_seconds(text)}"
        _parse_cron(text)
        return text
    if isinstance(value, crontab):
        return value.expression
    if isinstance(value, int | float | timedelta) and not isinstance(value, bool):
        return interval_expression(value)
    raise ConfigurationError(
        f"invalid schedule {value!r}: give a cron string such as '0 3 * * *', a crontab(...), "
        "or an interval in seconds or as a timedelta"
    )


def zone(tz: str) -> ZoneInfo:
    """The IANA time zone named ``tz`` (``"UTC"`` included); ConfigurationError otherwise."""
    try:
        if not isinstance(tz, str) or not tz:
            raise ValueError(tz)
        return ZoneInfo(tz)
    except (KeyError, ValueError, OSError, UnicodeError):
        raise ConfigurationError(
            f"unknown time zone {tz!r} (use an IANA name such as 'Europe/Paris')"
        ) from None


class Timetable:
    """The fire times of one schedule expression in one time zone."""

    __slots__ = ("_every", "_fields", "_real_time", "_zone", "expression", "tz")

    def __init__(self, expression: str, tz: str, every: int | None, fields: _Fields | None) -> None:
        self.expression = expression
        """The expression as parsed (stripped)."""
        self.tz = tz
        """The IANA zone whose wall clock cron fields match (intervals ignore it)."""
        self._zone = zone(tz)
        self._every = every
        self._fields = fields
        # Every hour allowed: follow real time through DST; named hours: once per wall time.
        self._real_time = fields is not None and fields.hours == tuple(range(24))

    @classmethod
    def parse(cls, expression: str, tz: str = "UTC") -> Timetable:
        """Check ``expression`` (cron, macro or ``@every N``) and ``tz``; ConfigurationError
        naming the bad part otherwise."""
        if not isinstance(expression, str):
            raise ConfigurationError(f"invalid cron {expression!r}: a schedule is a string")
        text = expression.strip()
        if text.lower().startswith("@every"):
            return cls(text, tz, _every_seconds(text), None)
        return cls(text, tz, None, _parse_cron(text))

    def __repr__(self) -> str:
        return f"Timetable.parse({self.expression!r}, tz={self.tz!r})"

    def describe(self) -> str:
        """Short human text, e.g. ``"cron '0 30 2 * * *' in Europe/Paris"``."""
        if self._every is not None:
            return f"every {self._every} seconds"
        return f"cron {self.expression!r} in {self.tz}"

    def next_after(self, after_ms: int) -> int | None:
        """The smallest fire time strictly after ``after_ms`` (epoch ms), or None if none."""
        if self._every is not None:
            period = self._every * 1000
            return (after_ms // period + 1) * period
        start = max(after_ms // 1000 + 1, _MIN_S)
        found = self._next_real(start) if self._real_time else self._next_wall(start)
        return None if found is None else found * 1000

    def between(self, start_ms: int, end_ms: int, limit: int) -> list[int]:
        """Every fire time t with ``start_ms <= t <= end_ms``, ascending, at most ``limit``."""
        times: list[int] = []
        t = self.next_after(start_ms - 1) if limit > 0 else None
        while t is not None and t <= end_ms:
            times.append(t)
            if len(times) >= limit:
                break
            t = self.next_after(t)
        return times

    # Instants below are int seconds since the epoch; a wall time is the local clock reading
    # expressed the same way (instant + offset), so both compare and subtract as ints.

    def _offset(self, t: int) -> int:
        offset = (_EPOCH + timedelta(seconds=t)).astimezone(self._zone).utcoffset()
        return 0 if offset is None else offset // _ONE_SECOND

    def _next_match(self, wall: int) -> int | None:
        assert self._fields is not None
        if wall > _MAX_S:
            return None
        found = self._fields.next_wall(_NAIVE_EPOCH + timedelta(seconds=wall))
        return None if found is None else (found - _NAIVE_EPOCH) // _ONE_SECOND

    def _change(self, a: int, b: int) -> int | None:
        """The first instant in (a, b] whose offset differs from a's, or None."""
        offset = self._offset(a)
        while a < b:
            probe = min(a + _PROBE_STEP, b)
            if self._offset(probe) != offset:
                while probe - a > 1:  # the change lies in (a, probe]
                    middle = (a + probe) // 2
                    if self._offset(middle) == offset:
                        a = middle
                    else:
                        probe = middle
                return probe
            a = probe
        return None

    def _next_real(self, t: int) -> int | None:
        """Hour field '*': the first instant >= t whose local wall time matches. A repeated
        hour fires twice and a skipped hour not at all: real time between fires is kept."""
        while t <= _MAX_S:
            offset = self._offset(t)
            wall = self._next_match(t + offset)
            if wall is None:
                return None
            change = self._change(t, wall - offset)
            if change is None:
                return wall - offset
            t = change  # the match lies past an offset change: redo it from there
        return None

    def _next_wall(self, t: int) -> int | None:
        """Named hours: the first instant >= t at which a matching wall time resolves with
        fold=0: a skipped wall time fires shifted forward by the gap, a repeated one at its
        first occurrence."""
        while t <= _MAX_S:
            offset = self._offset(t)
            before = self._offset(t - _LOOKBACK)
            began = self._change(t - _LOOKBACK, t) if before != offset else None
            candidates = []
            low = t + offset
            if began is not None and before > offset:
                # Fall back at `began`: wall times below began + before were already lived.
                low = max(low, began + before)
            wall = self._next_match(low)
            change = None
            if wall is not None:
                change = self._change(t, wall - offset)
                if change is None:
                    candidates.append(wall - offset)
            if began is not None and before < offset and t < began + offset - before:
                # Spring forward at `began`: the skipped wall times [began + before,
                # began + offset) resolve with the old offset to [began, began + gap).
                skipped = self._next_match(t + before)
                if skipped is not None and skipped < began + offset:
                    candidates.append(skipped - before)
            if candidates:
                return min(candidates)
            if change is None:
                return None
            t = change
        return None
