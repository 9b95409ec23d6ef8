"""Property-based tests of gateway.core.hours: working time on Standard and Premium calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.hours import PREMIUM, Calendar

BERLIN = Calendar("Europe/Berlin", "DE")
LISBON = Calendar("Europe/Lisbon", "PT")
LONDON = Calendar("Europe/London", "GB", "ENG")
NEW_YORK = Calendar("America/New_York", "US")
STANDARD = (BERLIN, LISBON, LONDON, NEW_YORK)
CALENDARS = (*STANDARD, PREMIUM)

FIRST, LAST = date(2024, 1, 1), date(2028, 12, 31)  # 1 January 2024 is a Monday
YEARS = range(FIRST.year, LAST.year + 1)
NINE, FIVE = time(9, 0), time(17, 0)
HOUR = timedelta(hours=1)
WORKING_DAY = 8 * HOUR
ZERO = timedelta(0)

# An oracle independent of gateway.core.hours' own cached lookup: the holidays package itself.
HOLIDAYS = {
    cal: holidays.country_holidays(cal.country, subdiv=cal.subdivision, years=YEARS)
    for cal in STANDARD
}


def oracle_working_day(cal: Calendar, day: date) -> bool:
    return cal.premium or (day.weekday() < 5 and day not in HOLIDAYS[cal])


def local(cal: Calendar, day: date, at: time) -> datetime:
    """The UTC instant of local time `at` on `day` in the calendar's zone."""
    return datetime.combine(day, at, cal.zone).astimezone(UTC)


def local_date(cal: Calendar, instant: datetime) -> date:
    return instant.astimezone(cal.zone).date()


def next_working_day(cal: Calendar, day: date) -> date:
    day += timedelta(days=1)
    while not cal.is_working_day(day):
        day += timedelta(days=1)
    return day


def dst_change_days(zone_calendar: Calendar) -> list[date]:
    """Days on whose early morning the calendar's zone changes its UTC offset."""
    days, day = [], FIRST
    offset = datetime.combine(day, time(12), zone_calendar.zone).utcoffset()
    while day < LAST:
        day += timedelta(days=1)
        now = datetime.combine(day, time(12), zone_calendar.zone).utcoffset()
        if now != offset:
            days.append(day)
        offset = now
    return days


ANCHORS = {cal: sorted({*dst_change_days(cal), *HOLIDAYS[cal]}) for cal in STANDARD}
ANCHORS[PREMIUM] = sorted({day for cal in STANDARD for day in ANCHORS[cal]})
assert all(len(days) > 20 for days in ANCHORS.values())

ANY_INSTANT = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2028, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
)
EDGE_TIMES = (time(0), time(8, 59, 59), NINE, time(16, 59, 59), FIVE, time(17, 0, 1))
LOCAL_TIMES = st.one_of(st.sampled_from(EDGE_TIMES), st.times())
AMOUNTS = st.one_of(
    st.integers(0, 200 * 60).map(lambda minutes: timedelta(minutes=minutes)),
    st.integers(0, 200).map(lambda hours: hours * HOUR),
    st.integers(0, 25).map(lambda days: days * WORKING_DAY),
)
POSITIVE = AMOUNTS.filter(lambda amount: amount > ZERO)
calendars = st.sampled_from(CALENDARS)
standard_calendars = st.sampled_from(STANDARD)


@st.composite
def instants(draw: st.DrawFn, cal: Calendar) -> datetime:
    """An aware UTC instant in 2024–2028, often a few days from a DST change or a holiday."""
    if draw(st.booleans()):
        return draw(ANY_INSTANT)
    anchor = draw(st.sampled_from(ANCHORS[cal]))
    day = anchor + timedelta(days=draw(st.integers(-3, 3)))
    return local(cal, min(max(day, FIRST), LAST), draw(LOCAL_TIMES))


@st.composite
def amounts(draw: st.DrawFn, cal: Calendar, start: datetime) -> timedelta:
    """An amount, sometimes exactly the working time from `start` to a later window's 17:00."""
    if cal.premium or draw(st.booleans()):
        return draw(AMOUNTS)
    day = local_date(cal, start)
    for _ in range(draw(st.integers(1, 25))):
        day = next_working_day(cal, day)
    return cal.working_time_between(start, local(cal, day, FIVE))


def ordered(first: datetime, *offsets: timedelta) -> list[datetime]:
    return sorted([first, *(first + offset for offset in offsets)])


OFFSETS = st.timedeltas(min_value=ZERO, max_value=timedelta(days=40))
mondays = st.one_of(
    st.integers(0, (LAST - FIRST).days // 7 - 1).map(lambda n: FIRST + timedelta(weeks=n)),
    st.sampled_from(ANCHORS[PREMIUM]).map(lambda day: day - timedelta(days=day.weekday())),
)


# --- 1. add and between are inverse ---------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(cal=calendars, data=st.data())
def test_working_time_between_recovers_the_amount_added(cal: Calendar, data: st.DataObject) -> None:
    start = data.draw(instants(cal), "start")
    amount = data.draw(amounts(cal, start), "amount")
    result = cal.add_working_time(start, amount)
    assert result.tzinfo is UTC
    assert result >= start
    assert cal.working_time_between(start, result) == amount


# --- 2. monotonic and associative -----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(cal=calendars, data=st.data())
def test_add_working_time_is_strictly_increasing_in_the_amount(
    cal: Calendar, data: st.DataObject
) -> None:
    start = data.draw(instants(cal), "start")
    a, b = sorted([data.draw(amounts(cal, start), "a"), data.draw(AMOUNTS, "b")])
    if a == b:
        assert cal.add_working_time(start, a) == cal.add_working_time(start, b)
    else:
        assert cal.add_working_time(start, a) < cal.add_working_time(start, b)


@settings(max_examples=200, deadline=None)
@given(cal=calendars, data=st.data())
def test_adding_in_two_steps_equals_adding_the_sum_when_the_second_step_is_positive(
    cal: Calendar, data: st.DataObject
) -> None:
    """Holds even when the first step ends exactly at 17:00: the second step resumes next window."""
    start = data.draw(instants(cal), "start")
    a = data.draw(amounts(cal, start), "a")
    b = data.draw(POSITIVE, "b")
    middle = cal.add_working_time(start, a)
    assert cal.add_working_time(middle, b) == cal.add_working_time(start, a + b)


@settings(max_examples=200, deadline=None)
@given(cal=standard_calendars, data=st.data())
def test_adding_zero_keeps_a_working_instant_and_moves_any_other_to_the_next_window_start(
    cal: Calendar, data: st.DataObject
) -> None:
    """So add(add(t, a), 0) == add(t, a) fails exactly when add(t, a) is a 17:00 window end."""
    start = data.draw(instants(cal), "start")
    a = data.draw(amounts(cal, start), "a")
    middle = cal.add_working_time(start, a)
    again = cal.add_working_time(middle, ZERO)
    if cal.is_working_time(middle):
        assert again == middle
    else:  # the first step stopped at the end of a window: 17:00 local on a working day
        day = local_date(cal, middle)
        assert middle == local(cal, day, FIVE)
        assert cal.is_working_day(day)
        assert again == local(cal, next_working_day(cal, day), NINE)
        assert cal.add_working_time(start, a + ZERO) == middle != again


def test_two_steps_ending_at_friday_five_resume_on_monday() -> None:
    friday_16 = local(BERLIN, date(2026, 11, 20), time(16))
    friday_17 = BERLIN.add_working_time(friday_16, HOUR)
    monday_9, monday_10 = (local(BERLIN, date(2026, 11, 23), time(h)) for h in (9, 10))
    assert friday_17 == local(BERLIN, date(2026, 11, 20), FIVE)
    assert BERLIN.add_working_time(friday_17, HOUR) == monday_10
    assert BERLIN.add_working_time(friday_16, 2 * HOUR) == monday_10
    assert BERLIN.add_working_time(friday_17, ZERO) == monday_9  # not friday_17
    assert BERLIN.add_working_time(friday_16, HOUR + ZERO) == friday_17


# --- 3. where results land ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(cal=standard_calendars, data=st.data())
def test_adding_a_positive_amount_ends_in_working_time_or_at_five_on_a_working_day(
    cal: Calendar, data: st.DataObject
) -> None:
    start = data.draw(instants(cal), "start")
    result = cal.add_working_time(start, data.draw(POSITIVE, "amount"))
    at = result.astimezone(cal.zone)
    assert cal.is_working_time(result) or (at.time() == FIVE and oracle_working_day(cal, at.date()))


# --- 4. and 5. working_time_between ---------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(cal=calendars, data=st.data())
def test_working_time_between_is_additive_over_consecutive_intervals(
    cal: Calendar, data: st.DataObject
) -> None:
    a, b, c = ordered(data.draw(instants(cal)), data.draw(OFFSETS), data.draw(OFFSETS))
    between = cal.working_time_between
    assert between(a, b) + between(b, c) == between(a, c)


@settings(max_examples=200, deadline=None)
@given(cal=calendars, data=st.data())
def test_working_time_between_is_between_zero_and_the_elapsed_time(
    cal: Calendar, data: st.DataObject
) -> None:
    a, b = ordered(data.draw(instants(cal)), data.draw(OFFSETS))
    assert ZERO <= cal.working_time_between(a, b) <= b - a
    assert cal.working_time_between(b, a) == ZERO


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_premium_working_time_between_equals_the_elapsed_time(data: st.DataObject) -> None:
    a, b = ordered(data.draw(instants(PREMIUM)), data.draw(OFFSETS))
    assert PREMIUM.working_time_between(a, b) == b - a


# --- 6. whole weeks -------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(cal=standard_calendars, monday=mondays)
def test_a_calendar_week_holds_eight_hours_per_working_day(cal: Calendar, monday: date) -> None:
    week = [monday + timedelta(days=n) for n in range(7)]
    start, end = local(cal, monday, time(0)), local(cal, monday + timedelta(weeks=1), time(0))
    working_days = sum(cal.is_working_day(day) for day in week)
    assert working_days == sum(oracle_working_day(cal, day) for day in week)
    assert cal.working_time_between(start, end) == working_days * WORKING_DAY


# --- 7. is_working_time ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(cal=standard_calendars, data=st.data())
def test_is_working_time_switches_on_at_nine_and_off_at_five_local_on_working_days(
    cal: Calendar, data: st.DataObject
) -> None:
    day = next_working_day(cal, local_date(cal, data.draw(instants(cal))))
    assert oracle_working_day(cal, day)
    expected = {time(8, 59, 59): False, NINE: True, time(16, 59, 59): True, FIVE: False}
    for at, working in expected.items():
        assert cal.is_working_time(local(cal, day, at)) is working, at


@settings(max_examples=300, deadline=None)
@given(cal=calendars, data=st.data())
def test_is_working_time_is_nine_to_five_local_on_weekdays_that_are_not_holidays(
    cal: Calendar, data: st.DataObject
) -> None:
    instant = data.draw(instants(cal))
    at = instant.astimezone(cal.zone)
    assert cal.is_working_day(at.date()) is oracle_working_day(cal, at.date())
    expected = cal.premium or (oracle_working_day(cal, at.date()) and NINE <= at.time() < FIVE)
    assert cal.is_working_time(instant) is expected


# --- inputs in other zones -----------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(cal=standard_calendars, data=st.data())
def test_standard_results_do_not_depend_on_the_zone_of_the_input(
    cal: Calendar, data: st.DataObject
) -> None:
    start = data.draw(instants(cal), "start")
    amount = data.draw(AMOUNTS, "amount")
    end = start + data.draw(OFFSETS, "offset")
    for zone in (cal.zone, ZoneInfo("Asia/Kolkata")):
        result = cal.add_working_time(start.astimezone(zone), amount)
        assert result.tzinfo is UTC
        assert result == cal.add_working_time(start, amount)
        between = cal.working_time_between(start.astimezone(zone), end.astimezone(zone))
        assert between == cal.working_time_between(start, end)


def test_premium_counts_elapsed_time_for_inputs_in_a_local_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    saturday_noon = datetime(2024, 3, 30, 12, tzinfo=berlin)  # clocks go forward that night
    sunday_midnight, sunday_4 = (datetime(2024, 3, 31, h, tzinfo=berlin) for h in (0, 4))
    day_later = PREMIUM.add_working_time(saturday_noon, 24 * HOUR)
    assert day_later.tzinfo is UTC
    assert day_later == saturday_noon.astimezone(UTC) + 24 * HOUR
    assert PREMIUM.add_working_days(saturday_noon, 1) == day_later
    assert PREMIUM.working_time_between(sunday_midnight, sunday_4) == 3 * HOUR


def test_a_negative_amount_of_working_time_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        BERLIN.add_working_time(datetime(2026, 11, 21, 12, tzinfo=UTC), -HOUR)


# --- examples -------------------------------------------------------------------------------------


@pytest.mark.parametrize("year", YEARS)
def test_german_unity_day_is_not_a_working_day_in_germany(year: int) -> None:
    unity_day = date(year, 10, 3)
    assert not BERLIN.is_working_day(unity_day)
    assert not BERLIN.is_working_time(local(BERLIN, unity_day, time(12)))
    assert LISBON.is_working_day(unity_day) is (unity_day.weekday() < 5)


@pytest.mark.parametrize("year", YEARS)
def test_freedom_day_is_not_a_working_day_in_portugal(year: int) -> None:
    freedom_day = date(year, 4, 25)
    assert not LISBON.is_working_day(freedom_day)
    assert not LISBON.is_working_time(local(LISBON, freedom_day, time(12)))


def test_christmas_2026_in_england_follows_the_holidays_substitute_days() -> None:
    """26 December 2026 is a Saturday; whatever substitute `holidays` names is not worked."""
    england = HOLIDAYS[LONDON]
    days = [date(2026, 12, 21) + timedelta(days=n) for n in range(15)]
    substitutes = [day for day in days if day.weekday() < 5 and day in england and day.day > 26]
    assert date(2026, 12, 26).weekday() == 5
    assert substitutes  # Boxing Day moves to a weekday
    for day in days:
        assert LONDON.is_working_day(day) is (day.weekday() < 5 and day not in england), day
    for day in substitutes:
        assert not LONDON.is_working_time(local(LONDON, day, time(12)))


@pytest.mark.parametrize("year", YEARS)
def test_thanksgiving_is_not_a_working_day_in_the_us(year: int) -> None:
    first_thursday = date(year, 11, 1) + timedelta(days=(3 - date(year, 11, 1).weekday()) % 7)
    thanksgiving = first_thursday + timedelta(weeks=3)
    assert "Thanksgiving" in HOLIDAYS[NEW_YORK][thanksgiving]
    assert not NEW_YORK.is_working_day(thanksgiving)
    wednesday_16 = local(NEW_YORK, thanksgiving - timedelta(days=1), time(16))
    friday_10 = local(NEW_YORK, thanksgiving + timedelta(days=1), time(10))
    assert NEW_YORK.add_working_time(wednesday_16, 2 * HOUR) == friday_10


def test_the_spring_forward_week_in_berlin_still_has_forty_working_hours() -> None:
    monday, next_monday = date(2026, 3, 23), date(2026, 3, 30)  # clocks go forward on 29 March
    start, end = local(BERLIN, monday, time(0)), local(BERLIN, next_monday, time(0))
    assert end - start == 7 * 24 * HOUR - HOUR
    assert BERLIN.working_time_between(start, end) == 40 * HOUR
    assert BERLIN.add_working_time(start, 40 * HOUR) == local(BERLIN, date(2026, 3, 27), FIVE)
