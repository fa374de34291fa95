"""taskflow.cron: cron parsing, crontab(), intervals, and DST-correct fire times, checked
against a brute-force reference around every transition of several zones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import taskflow
from taskflow.cron import (
    Timetable,
    crontab,
    interval_expression,
    schedule_expression,
    zone,
)
from taskflow.errors import ConfigurationError


def ms(text: str, tz: str = "UTC") -> int:
    """Epoch ms of a local ISO time (fold=0) in ``tz``."""
    local = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))
    return int(local.timestamp()) * 1000


def local(t: int, tz: str) -> str:
    """An epoch-ms instant as local ISO text with its offset."""
    return datetime.fromtimestamp(t / 1000, ZoneInfo(tz)).isoformat()


def fires(expression: str, start: str, count: int, tz: str = "UTC") -> list[str]:
    """The first ``count`` fire times strictly after local ``start``, as local ISO text."""
    table = Timetable.parse(expression, tz)
    out: list[str] = []
    t: int | None = ms(start, tz)
    for _ in range(count):
        assert t is not None
        t = table.next_after(t)
        assert t is not None
        out.append(local(t, tz))
    return out


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/15 * * * *", ["00:15", "00:30", "00:45", "01:00"]),
        ("0,30 * * * *", ["00:30", "01:00", "01:30", "02:00"]),
        ("10-12 * * * *", ["00:10", "00:11", "00:12", "01:10"]),
        ("50-59/4 * * * *", ["00:50", "00:54", "00:58", "01:50"]),
        ("55/2 * * * *", ["00:55", "00:57", "00:59", "01:55"]),
        ("0 */6 * * *", ["06:00", "12:00", "18:00", "00:00"]),
        ("0 1,3-4 * * *", ["01:00", "03:00", "04:00", "01:00"]),
        ("@hourly", ["01:00", "02:00", "03:00", "04:00"]),
    ],
)
def test_minute_and_hour_fields(expression: str, expected: list[str]) -> None:
    got = fires(expression, "2024-01-01T00:00:00", 4)
    assert [g[11:16] for g in got] == expected


def test_six_fields_put_seconds_first() -> None:
    assert fires("*/20 * * * * *", "2024-01-01T00:00:00", 4) == [
        "2024-01-01T00:00:20+00:00",
        "2024-01-01T00:00:40+00:00",
        "2024-01-01T00:01:00+00:00",
        "2024-01-01T00:01:20+00:00",
    ]
    assert fires("5 0 12 * * *", "2024-01-01T00:00:00", 1) == ["2024-01-01T12:00:05+00:00"]


def test_day_month_and_weekday_fields_with_names() -> None:
    # 2024-01-01 is a Monday.
    assert fires("0 9 * * MON-fri", "2024-01-05T10:00:00", 2) == [
        "2024-01-08T09:00:00+00:00",
        "2024-01-09T09:00:00+00:00",
    ]
    assert fires("0 0 1 jan,Jul *", "2024-01-01T00:00:00", 2) == [
        "2024-07-01T00:00:00+00:00",
        "2025-01-01T00:00:00+00:00",
    ]
    # 0 and 7 are both Sunday; ranges may end on 7.
    sundays = fires("0 0 * * 0", "2024-01-01T00:00:00", 2)
    assert sundays == fires("0 0 * * 7", "2024-01-01T00:00:00", 2)
    assert sundays == fires("0 0 * * sun", "2024-01-01T00:00:00", 2)
    assert sundays[0] == "2024-01-07T00:00:00+00:00"
    assert fires("0 0 * * 6-7", "2024-01-01T00:00:00", 2) == [
        "2024-01-06T00:00:00+00:00",
        "2024-01-07T00:00:00+00:00",
    ]
    assert fires("0 0 ? * ?", "2024-01-01T00:00:00", 1) == ["2024-01-02T00:00:00+00:00"]
    assert fires("0 0 * * 7/3", "2024-01-01T00:00:00", 1) == sundays[:1]
    assert fires("0 0 * * 1/2", "2024-01-01T00:00:00", 4) == [
        "2024-01-03T00:00:00+00:00",
        "2024-01-05T00:00:00+00:00",
        "2024-01-08T00:00:00+00:00",
        "2024-01-10T00:00:00+00:00",
    ]
    # February 29 waits for a leap year.
    assert fires("0 0 29 2 *", "2024-03-01T00:00:00", 1) == ["2028-02-29T00:00:00+00:00"]


def test_day_fields_combine_like_vixie_cron() -> None:
    # Both restricted: the 13th OR any Friday.
    assert fires("0 0 13 * fri", "2024-01-01T00:00:00", 4) == [
        "2024-01-05T00:00:00+00:00",
        "2024-01-12T00:00:00+00:00",
        "2024-01-13T00:00:00+00:00",
        "2024-01-19T00:00:00+00:00",
    ]
    # One restricted: only it counts.
    assert fires("0 0 13 * *", "2024-01-01T00:00:00", 1) == ["2024-01-13T00:00:00+00:00"]
    assert fires("0 0 ? * fri", "2024-01-01T00:00:00", 1) == ["2024-01-05T00:00:00+00:00"]


@pytest.mark.parametrize(
    ("macro", "same_as"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macros(macro: str, same_as: str) -> None:
    start = "2024-02-10T05:00:00"
    assert fires(macro, start, 3, "Europe/Paris") == fires(same_as, start, 3, "Europe/Paris")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 0 * * *", "invalid cron '61 0 * * *': minute '61' is out of range 0-59"),
        # The second field of five is the hour (minute hour day-of-month month day-of-week).
        ("0 61 * * *", "invalid cron '0 61 * * *': hour '61' is out of range 0-23"),
        ("60 0 0 * * *", "second '60' is out of range 0-59"),
        ("0 24 * * *", "hour '24' is out of range 0-23"),
        ("0 0 0 * *", "day-of-month '0' is out of range 1-31"),
        ("0 0 * 13 *", "month '13' is out of range 1-12"),
        ("0 0 * * 8", "day-of-week '8' is out of range 0-7"),
        ("0 0 * foo *", "month 'foo' is not a number or a name (jan, "),
        ("0 0 * * funday", "day-of-week 'funday' is not a number or a name (sun, "),
        ("x * * * *", "minute 'x' is not a number"),
        ("? * * * *", "minute '?' is not a number"),
        ("*/0 * * * *", "minute '*/0' needs a whole step of at least 1"),
        ("*/ * * * *", "minute '*/' needs a whole step"),
        ("5-1 * * * *", "minute '5-1' is a range that runs backwards"),
        ("1, * * * *", "minute '1,' has an empty list item"),
        ("0 0 L * *", "day-of-month 'L' uses L, W or #, which are not supported"),
        ("0 0 15W * *", "day-of-month '15W' uses L, W or #"),
        ("0 0 * * 5#3", "day-of-week '5#3' uses L, W or #"),
        ("0 0 * * 5L", "day-of-week '5L' uses L, W or #"),
        (
            "0 0 * *",
            "invalid cron '0 0 * *': expected 5 fields (minute hour day-of-month month "
            "day-of-week) or 6 (second first), got 4",
        ),
        ("", "got 0"),
        ("0 0 0 0 * * *", "got 7"),
        ("@fortnightly", "unknown macro"),
        ("0 0 30 2 *", "invalid cron '0 0 30 2 *': never fires"),
        ("0 0 31 4,6 *", "never fires"),
    ],
)
def test_parse_errors_name_expression_field_and_token(expression: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Timetable.parse(expression)
    assert message in str(info.value)
    assert repr(expression) in str(info.value)


def test_unsupported_syntax_is_not_mistaken_for_names() -> None:
    # 'jul' holds an L and 'wed' a W: names are not the L/W extensions.
    assert fires("0 0 1 jul *", "2024-01-01T00:00:00", 1) == ["2024-07-01T00:00:00+00:00"]
    assert fires("0 0 * * wed", "2024-01-01T00:00:00", 1) == ["2024-01-03T00:00:00+00:00"]


def test_timetable_attributes_and_describe() -> None:
    table = Timetable.parse("  0 30 2 * * *  ", "Europe/Paris")
    assert (table.expression, table.tz) == ("0 30 2 * * *", "Europe/Paris")
    assert table.describe() == "cron '0 30 2 * * *' in Europe/Paris"
    assert Timetable.parse("@every 30").describe() == "every 30 seconds"
    with pytest.raises(ConfigurationError, match="a schedule is a string"):
        Timetable.parse(5)  # type: ignore[arg-type]


# --- crontab -------------------------------------------------------------------------------


def test_crontab_celery_examples() -> None:
    assert crontab(minute=0, hour=3).expression == "0 3 * * *"
    assert str(crontab(minute="*/15")) == "*/15 * * * *"
    weekdays = crontab(day_of_week="mon-fri", hour=9, minute=30)
    assert weekdays.expression == "30 9 * * mon-fri"
    assert repr(weekdays) == "crontab(minute='30', hour='9', day_of_week='mon-fri')"
    assert crontab().expression == "* * * * *"
    assert crontab(minute=[0, 30], hour=range(8, 10)).expression == "0,30 8,9 * * *"
    assert crontab(minute="0, 30", day_of_month=1, month_of_year="jan").expression == (
        "0,30 * 1 jan *"
    )
    assert fires(crontab(minute=0, hour=3).expression, "2024-01-01T04:00:00", 1) == [
        "2024-01-02T03:00:00+00:00"
    ]


def test_crontab_equality_and_hash() -> None:
    assert crontab(minute=0, hour=3) == crontab(minute="0", hour="3")
    assert crontab(minute=0, hour=3) != crontab(minute=0, hour=4)
    assert len({crontab(minute=0), crontab(minute="0"), crontab(minute=1)}) == 2
    assert crontab(minute=0) != "0 * * * *"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minute": 60}, "crontab(minute=60) is invalid: minute '60' is out of range 0-59"),
        ({"hour": "25"}, "crontab(hour='25') is invalid: hour '25' is out of range 0-23"),
        ({"day_of_week": "funday"}, "crontab(day_of_week='funday') is invalid"),
        ({"day_of_month": 0}, "crontab(day_of_month=0) is invalid"),
        ({"month_of_year": 13}, "crontab(month_of_year=13) is invalid"),
        ({"minute": True}, "crontab(minute=True) is invalid"),
        ({"minute": 1.5}, "crontab(minute=1.5) is invalid"),
        ({"minute": []}, "crontab(minute=[]) is invalid"),
        ({"minute": [1, "2"]}, "crontab(minute=[1, '2']) is invalid"),
        ({"minute": ""}, "crontab(minute='') is invalid"),
        ({"minute": "1 2"}, "crontab(minute='1 2') is invalid"),
        ({"minute": None}, "crontab(minute=None) is invalid"),
        ({"day_of_month": 31, "month_of_year": 2}, "never fires"),
    ],
)
def test_crontab_refuses_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        crontab(**kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_crontab_is_exported() -> None:
    assert taskflow.crontab is crontab


# --- intervals and schedule_expression ------------------------------------------------------


def test_interval_expression() -> None:
    assert interval_expression(30) == "@every 30"
    assert interval_expression(30.0) == "@every 30"
    assert interval_expression(timedelta(minutes=5)) == "@every 300"
    for bad in (0, -5, 0.5, 1.5, True, float("nan"), float("inf"), "30", None, timedelta(0)):
        with pytest.raises(ConfigurationError, match="intervals are whole seconds >= 1"):
            interval_expression(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="whole seconds"):
        interval_expression(timedelta(seconds=1, milliseconds=500))


def test_schedule_expression_normalizes_every_kind() -> None:
    assert schedule_expression("  0   3 * * * ") == "0 3 * * *"
    assert schedule_expression("@daily") == "@daily"
    assert schedule_expression("*/10 * * * * *") == "*/10 * * * * *"
    assert schedule_expression(crontab(minute=0, hour=3)) == "0 3 * * *"
    assert schedule_expression(30) == "@every 30"
    assert schedule_expression(timedelta(hours=1)) == "@every 3600"
    assert schedule_expression("@every 30") == "@every 30"
    assert schedule_expression("@every 30s") == "@every 30"
    assert schedule_expression("@every 5m") == "@every 300"
    assert schedule_expression("@every 2h") == "@every 7200"
    for bad in ("0 61 * * *", "@every 0", "@every 1.5", "@every 5d", "@every", True, None, [1]):
        with pytest.raises(ConfigurationError):
            schedule_expression(bad)  # type: ignore[arg-type]


def test_interval_fires_on_multiples_of_the_period_since_the_epoch() -> None:
    hourly = Timetable.parse("@every 3600", "America/New_York")  # the zone is ignored
    after = ms("2024-05-01T10:20:00")
    assert hourly.next_after(after) == ms("2024-05-01T11:00:00")
    assert hourly.next_after(ms("2024-05-01T11:00:00")) == ms("2024-05-01T12:00:00")
    assert hourly.next_after(ms("2024-05-01T11:00:00") - 1) == ms("2024-05-01T11:00:00")
    every7 = Timetable.parse("@every 7s")
    assert every7.between(0, 30_000, 10) == [0, 7000, 14000, 21000, 28000]
    assert every7.next_after(-1) == 0


# --- zones ---------------------------------------------------------------------------------


def test_zone() -> None:
    assert zone("UTC").key == "UTC"
    assert zone("Europe/Paris").key == "Europe/Paris"
    for bad in ("Mars/Base", "", "Europe", "../etc/passwd", "/etc/localtime", "europe/paris"):
        with pytest.raises(ConfigurationError) as info:
            zone(bad)
        assert str(info.value) == (
            f"unknown time zone {bad!r} (use an IANA name such as 'Europe/Paris')"
        )
    with pytest.raises(ConfigurationError, match="unknown time zone 'Mars/Base'"):
        Timetable.parse("0 3 * * *", "Mars/Base")
    with pytest.raises(ConfigurationError, match="unknown time zone"):
        Timetable.parse("@every 30", "Nowhere")


def test_cron_fields_match_local_wall_clock() -> None:
    assert fires("0 3 * * *", "2024-06-01T00:00:00", 1, "Asia/Kolkata") == [
        "2024-06-01T03:00:00+05:30"
    ]
    table = Timetable.parse("0 3 * * *", "Asia/Kolkata")
    assert table.next_after(ms("2024-05-31T18:00:00")) == ms("2024-05-31T21:30:00")


# --- DST -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["Europe/Paris", "America/New_York"])
def test_named_hour_fires_once_every_day_of_a_year(tz: str) -> None:
    table = Timetable.parse("0 30 2 * * *", tz)
    times = table.between(ms("2023-01-01T00:00:00", tz), ms("2023-12-31T23:59:59", tz), 1000)
    assert len(times) == 365
    assert times == sorted(set(times))
    dates = [local(t, tz)[:10] for t in times]
    assert len(set(dates)) == 365
    assert dates[0] == "2023-01-01"
    assert dates[-1] == "2023-12-31"


@pytest.mark.parametrize(
    ("expression", "tz", "day", "expected_utc"),
    [
        # Spring forward: 02:30 does not exist and fires shifted by the gap, at 03:30 summer time.
        ("0 30 2 * * *", "Europe/Paris", "2023-03-26", "2023-03-26T01:30:00+00:00"),
        ("0 30 2 * * *", "America/New_York", "2023-03-12", "2023-03-12T07:30:00+00:00"),
        # Fall back: a repeated time fires once, at its first (summer time) occurrence.
        ("0 30 2 * * *", "Europe/Paris", "2023-10-29", "2023-10-29T00:30:00+00:00"),
        ("0 30 1 * * *", "America/New_York", "2023-11-05", "2023-11-05T05:30:00+00:00"),
        # New York repeats 01:00-02:00, so 02:30 there is plain winter time.
        ("0 30 2 * * *", "America/New_York", "2023-11-05", "2023-11-05T07:30:00+00:00"),
        # Lord Howe moves by 30 minutes: 02:00-02:30 is skipped, 01:30-02:00 repeated.
        ("15 2 * * *", "Australia/Lord_Howe", "2023-10-01", "2023-09-30T15:45:00+00:00"),
        ("45 1 * * *", "Australia/Lord_Howe", "2023-04-02", "2023-04-01T14:45:00+00:00"),
    ],
)
def test_transition_day_instants(expression: str, tz: str, day: str, expected_utc: str) -> None:
    table = Timetable.parse(expression, tz)
    times = table.between(ms(f"{day}T00:00:00", tz), ms(f"{day}T23:59:59", tz), 10)
    assert [datetime.fromtimestamp(t / 1000, UTC).isoformat() for t in times] == [expected_utc]


def test_every_hour_follows_real_time_through_dst() -> None:
    tz = "Europe/Paris"
    # Fall back: 02:30 happens twice, an hour apart, and fires both times.
    assert fires("30 * * * *", "2023-10-29T01:00:00", 4, tz) == [
        "2023-10-29T01:30:00+02:00",
        "2023-10-29T02:30:00+02:00",
        "2023-10-29T02:30:00+01:00",
        "2023-10-29T03:30:00+01:00",
    ]
    # Spring forward: 02:30 never happens; the fires stay an hour apart in real time.
    assert fires("30 * * * *", "2023-03-26T00:00:00", 3, tz) == [
        "2023-03-26T00:30:00+01:00",
        "2023-03-26T01:30:00+01:00",
        "2023-03-26T03:30:00+02:00",
    ]
    # '*/1' and '0-23' also mean every hour.
    for hours in ("*/1", "0-23"):
        assert fires(f"30 {hours} * * *", "2023-10-29T01:00:00", 4, tz) == fires(
            "30 * * * *", "2023-10-29T01:00:00", 4, tz
        )


def test_shifted_time_that_meets_another_fire_time_fires_once() -> None:
    tz = "Europe/Paris"
    # 02:00 does not exist on 2023-03-26 and shifts to 03:00, which fires anyway: once.
    assert fires("0 2,3 * * *", "2023-03-25T12:00:00", 3, tz) == [
        "2023-03-26T03:00:00+02:00",
        "2023-03-27T02:00:00+02:00",
        "2023-03-27T03:00:00+02:00",
    ]


@pytest.mark.parametrize(
    "start", ["2023-03-26T00:30:00+00:00", "2023-10-29T00:00:00+00:00"], ids=["spring", "fall"]
)
def test_per_second_schedule_fires_every_real_second_through_transitions(start: str) -> None:
    table = Timetable.parse("* * * * * *", "Europe/Paris")
    begin = int(datetime.fromisoformat(start).timestamp()) * 1000
    end = begin + 3 * 3600 * 1000
    assert table.between(begin, end, 20_000) == list(range(begin, end + 1, 1000))


def test_between_limit_and_bounds() -> None:
    table = Timetable.parse("*/10 * * * * *")
    start = ms("2024-01-01T00:00:00")
    assert table.between(start, start + 60_000, 100) == [start + i * 10_000 for i in range(7)]
    assert table.between(start, start + 60_000, 3) == [start, start + 10_000, start + 20_000]
    assert table.between(start + 1, start + 9_999, 5) == []
    assert table.between(start, start + 60_000, 0) == []


def test_next_after_many_calls_on_a_per_second_schedule() -> None:
    # Not a timing assertion: 10,000 calls must simply finish (nothing quadratic).
    table = Timetable.parse("* * * * * *", "Europe/Paris")
    t = ms("2023-10-29T01:00:00", "Europe/Paris")
    first = t
    for _ in range(10_000):
        nxt = table.next_after(t)
        assert nxt is not None
        t = nxt
    assert t == first + 10_000 * 1000


# --- brute-force reference ----------------------------------------------------------------

Matcher = Callable[[datetime], bool]

# (expression, every hour?, independent predicate on a local wall time)
CASES: list[tuple[str, bool, Matcher]] = [
    ("30 * * * *", True, lambda d: d.minute == 30 and d.second == 0),
    ("*/15 * * * *", True, lambda d: d.minute % 15 == 0 and d.second == 0),
    ("0 * * * *", True, lambda d: d.minute == 0 and d.second == 0),
    ("30 2 * * *", False, lambda d: (d.hour, d.minute, d.second) == (2, 30, 0)),
    ("15 1 * * *", False, lambda d: (d.hour, d.minute, d.second) == (1, 15, 0)),
    ("0 2,3 * * *", False, lambda d: d.hour in (2, 3) and d.minute == 0 and d.second == 0),
    ("*/20 1-3 * * *", False, lambda d: 1 <= d.hour <= 3 and d.minute % 20 == 0 and d.second == 0),
    ("* 2 * * *", False, lambda d: d.hour == 2 and d.second == 0),
    ("*/7 * 2 * * *", False, lambda d: d.hour == 2 and d.second % 7 == 0),
    ("*/7 * * * * *", True, lambda d: d.second % 7 == 0),
]
ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC"]


def _transitions(tz: ZoneInfo, year: int) -> list[int]:
    """Epoch seconds of every offset change in ``year`` (hourly probe, then bisection)."""
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())

    def offset(t: int) -> timedelta | None:
        return datetime.fromtimestamp(t, tz).utcoffset()

    found = []
    for hour in range(366 * 24):
        a, b = start + hour * 3600, start + (hour + 1) * 3600
        if offset(a) != offset(b):
            while b - a > 1:
                middle = (a + b) // 2
                a, b = (middle, b) if offset(middle) == offset(a) else (a, middle)
            found.append(b)
    return found


def _reference(
    matcher: Matcher, every_hour: bool, tz: ZoneInfo, lo: int, hi: int, step: int
) -> list[int]:
    """Fire instants in [lo, hi] by brute force: every instant for every-hour schedules, every
    wall time resolved with fold=0 otherwise."""
    if every_hour:
        return sorted(t for t in range(lo, hi + 1, step) if matcher(datetime.fromtimestamp(t, tz)))
    fires_at: set[int] = set()
    wall = datetime.fromtimestamp(lo, tz).replace(tzinfo=None) - timedelta(hours=26)
    last = datetime.fromtimestamp(hi, tz).replace(tzinfo=None) + timedelta(hours=26)
    while wall <= last:
        if matcher(wall):
            t = int(wall.replace(tzinfo=tz, fold=0).timestamp())
            if lo <= t <= hi:
                fires_at.add(t)
        wall += timedelta(seconds=step)
    return sorted(fires_at)


@pytest.mark.parametrize("tz_name", ZONES)
@pytest.mark.parametrize(("expression", "every_hour", "matcher"), CASES, ids=[c[0] for c in CASES])
def test_next_after_matches_brute_force_around_transitions(
    tz_name: str, expression: str, every_hour: bool, matcher: Matcher
) -> None:
    tz = ZoneInfo(tz_name)
    per_second = len(expression.split()) == 6
    step = 1 if per_second else 60
    margin = 3 * 3600 if per_second else 36 * 3600
    centres = _transitions(tz, 2023) or [int(datetime(2023, 6, 1, tzinfo=UTC).timestamp())]
    table = Timetable.parse(expression, tz_name)
    for centre in centres:
        lo, hi = centre - margin, centre + margin
        expected = _reference(matcher, every_hour, tz, lo, hi, step)
        got = []
        t = table.next_after(lo * 1000 - 1)
        while t is not None and t <= hi * 1000:
            got.append(t // 1000)
            t = table.next_after(t)
        assert got == expected, (expression, tz_name, centre)
        # next_after from any instant agrees with the reference too, not only from a fire.
        for probe in range(lo, hi, 3 * 3600 + 17 * 60 + 13):
            later = [f for f in expected if f > probe]
            if later:
                assert table.next_after(probe * 1000 + 500) == later[0] * 1000
        assert table.between(lo * 1000, hi * 1000, 100_000) == [f * 1000 for f in expected]


def test_reference_windows_hold_transitions() -> None:
    # The brute-force test means something only if the zones do change offset in 2023.
    assert len(_transitions(ZoneInfo("Europe/Paris"), 2023)) == 2
    assert len(_transitions(ZoneInfo("America/New_York"), 2023)) == 2
    assert len(_transitions(ZoneInfo("Australia/Lord_Howe"), 2023)) == 2
    assert _transitions(ZoneInfo("UTC"), 2023) == []
