"""Property tests of the unit arithmetic (§3.11.2, R5.2) over the boundary of Business Hours –
Standard, daylight-saving changes and public holidays, in CET, WET/UK and US Eastern offices;
and of the ledger's sums (first to expire, first used)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from math import ceil

import holidays
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.hours import Calendar
from gateway.securehands import notices
from gateway.securehands.balance import (
    PENDING,
    PURCHASE,
    RESERVE,
    Entry,
    Lot,
    allocate,
    balance,
    free_in,
)
from gateway.securehands.units import count, expiry

BERLIN = Calendar("Europe/Berlin", "DE")  # CET/CEST
LISBON = Calendar("Europe/Lisbon", "PT")  # WET/WEST
LONDON = Calendar("Europe/London", "GB", "ENG")  # GMT/BST
NEW_YORK = Calendar("America/New_York", "US")  # US Eastern
CALENDARS = (BERLIN, LISBON, LONDON, NEW_YORK)
YEARS = range(2025, 2029)
HOUR = timedelta(hours=1)
HOLIDAYS = {
    c: holidays.country_holidays(c.country, subdiv=c.subdivision, years=YEARS) for c in CALENDARS
}


def local(cal: Calendar, day: date, at: time) -> datetime:
    return datetime.combine(day, at, cal.zone).astimezone(UTC)


def dst_days(cal: Calendar) -> list[date]:
    days, day = [], date(2025, 1, 1)
    offset = datetime.combine(day, time(12), cal.zone).utcoffset()
    while day < date(2028, 12, 31):
        day += timedelta(days=1)
        now = datetime.combine(day, time(12), cal.zone).utcoffset()
        if now != offset:
            days.append(day)
        offset = now
    return days


ANCHORS = {cal: sorted({*dst_days(cal), *HOLIDAYS[cal]}) for cal in CALENDARS}
EDGES = (time(0), time(1, 30), time(2, 30), time(8, 0), time(8, 40), time(9), time(12, 15))
EDGES += (time(16, 20), time(16, 59), time(17), time(17, 45), time(23, 30))
calendars = st.sampled_from(CALENDARS)
rates = st.one_of(
    st.sampled_from([Decimal("0.5"), Decimal(1), Decimal("1.25"), Decimal("1.5"), Decimal(2)]),
    st.decimals(min_value=0, max_value=5, places=2),
)
durations = st.integers(0, 30 * 60).map(lambda minutes: timedelta(minutes=minutes))


@st.composite
def starts(draw: st.DrawFn, cal: Calendar) -> datetime:
    """A start often within three days of a DST change or a public holiday, at an edge time."""
    anchor = draw(st.sampled_from(ANCHORS[cal]))
    day = anchor + timedelta(days=draw(st.integers(-3, 3)))
    at = draw(st.one_of(st.sampled_from(EDGES), st.times()))
    return local(cal, day, at)


def working_day(cal: Calendar, day: date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS[cal]


@settings(max_examples=400, deadline=None)
@given(cal=calendars, rate=rates, data=st.data())
def test_units_are_never_negative_and_the_hours_are_the_time_spent_rounded_up(
    cal: Calendar, rate: Decimal, data: st.DataObject
) -> None:
    start = data.draw(starts(cal), "start")
    spent = data.draw(durations, "spent")
    counted = count(start, start + spent, cal, rate=rate)
    assert counted.units >= 0
    assert counted.inside >= 0
    assert counted.outside >= 0
    assert counted.inside + counted.outside == counted.hours == ceil(spent / HOUR)
    assert counted.units == counted.inside + counted.outside * rate
    assert counted.hours * min(rate, 1) <= counted.units <= counted.hours * max(rate, 1)


@settings(max_examples=300, deadline=None)
@given(cal=calendars, rate=rates, data=st.data())
def test_a_session_wholly_inside_business_hours_costs_its_hours_rounded_up(
    cal: Calendar, rate: Decimal, data: st.DataObject
) -> None:
    day = data.draw(st.sampled_from(ANCHORS[cal])) + timedelta(days=data.draw(st.integers(-3, 3)))
    while not working_day(cal, day):
        day += timedelta(days=1)
    # no working day has a daylight-saving change (they happen on Sunday nights)
    first = data.draw(st.integers(0, 8 * 60), "first")
    last = data.draw(st.integers(first, 8 * 60), "last")
    nine = local(cal, day, time(9))
    start, end = nine + timedelta(minutes=first), nine + timedelta(minutes=last)
    counted = count(start, end, cal, rate=rate)
    assert counted.outside == 0
    assert counted.units == ceil((end - start) / HOUR)


@settings(max_examples=300, deadline=None)
@given(cal=calendars, rate=rates, data=st.data())
def test_a_session_on_a_public_holiday_or_a_weekend_is_all_outside_business_hours(
    cal: Calendar, rate: Decimal, data: st.DataObject
) -> None:
    day = data.draw(st.sampled_from([d for d in ANCHORS[cal] if not working_day(cal, d)]))
    start = local(cal, day, data.draw(st.sampled_from(EDGES)))
    end = min(start + data.draw(durations), local(cal, day + timedelta(days=1), time(0)))
    counted = count(start, end, cal, rate=rate)
    assert counted.inside == 0
    assert counted.units == counted.hours * rate


@settings(max_examples=200, deadline=None)
@given(
    cal=calendars,
    rate=rates,
    fixed=st.decimals(min_value=0, max_value=40, places=2),
    data=st.data(),
)
def test_a_fixed_sow_ignores_the_time(
    cal: Calendar, rate: Decimal, fixed: Decimal, data: st.DataObject
) -> None:
    start = data.draw(starts(cal), "start")
    for spent in (timedelta(0), data.draw(durations), timedelta(hours=26)):
        assert count(start, start + spent, cal, fixed=fixed, rate=rate).units == fixed


@settings(max_examples=300, deadline=None)
@given(cal=calendars, rate=rates, data=st.data())
def test_a_longer_session_never_costs_fewer_units(
    cal: Calendar, rate: Decimal, data: st.DataObject
) -> None:
    start = data.draw(starts(cal), "start")
    shorter, longer = sorted([data.draw(durations), data.draw(durations)])
    assert (
        count(start, start + shorter, cal, rate=rate).units
        <= count(start, start + longer, cal, rate=rate).units
    )


@settings(max_examples=150, deadline=None)
@given(cal=calendars, rate=rates, data=st.data())
def test_the_count_does_not_depend_on_the_zone_the_times_are_given_in(
    cal: Calendar, rate: Decimal, data: st.DataObject
) -> None:
    start = data.draw(starts(cal), "start")
    end = start + data.draw(durations, "spent")
    in_utc = count(start, end, cal, rate=rate)
    for zone in (cal.zone, NEW_YORK.zone):
        assert count(start.astimezone(zone), end.astimezone(zone), cal, rate=rate) == in_utc


def test_the_hour_that_straddles_the_boundary_is_charged_at_the_dearer_rate() -> None:
    thursday = date(2026, 11, 26)
    readme = count(
        local(BERLIN, thursday, time(15)),
        local(BERLIN, thursday, time(18, 20)),
        BERLIN,
        rate=Decimal("1.5"),
    )
    assert (readme.hours, readme.inside, readme.outside, readme.units) == (4, 2, 2, Decimal(5))
    morning = count(
        local(BERLIN, thursday, time(8, 30)),
        local(BERLIN, thursday, time(11, 6)),
        BERLIN,
        rate=Decimal("1.5"),
    )
    assert (morning.hours, morning.inside, morning.outside) == (3, 2, 1)
    cheap = count(
        local(BERLIN, thursday, time(8, 30)),
        local(BERLIN, thursday, time(11, 6)),
        BERLIN,
        rate=Decimal("0.5"),
    )
    assert (cheap.hours, cheap.inside, cheap.outside) == (3, 3, 0)


def test_the_night_clocks_go_forward_in_berlin_counts_the_time_that_passed() -> None:
    # 28 to 29 March 2026: 22:00 to 03:30 on the clock is 4 h 30 min: 5 hours, all outside
    start = datetime(2026, 3, 28, 22, 0, tzinfo=BERLIN.zone)
    end = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN.zone)
    counted = count(start, end, BERLIN, rate=Decimal(2))
    assert counted.spent == timedelta(hours=4, minutes=30)
    assert (counted.hours, counted.outside, counted.units) == (5, 5, Decimal(10))


def test_a_session_across_the_night_the_clocks_go_back_names_the_zone_of_each_end() -> None:
    # 25 October 2026, Berlin: 01:30 is CEST, 03:30 is CET (three hours passed)
    start = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
    shown = notices.when(start, start + timedelta(hours=3), BERLIN)
    assert f"{shown['start']}-{shown['end']} {shown['zone']}" == "01:30 CEST-03:30 CET"
    summer = notices.when(start - timedelta(days=7), start - timedelta(days=7, hours=-2), BERLIN)
    assert f"{summer['start']}-{summer['end']} {summer['zone']}" == "01:30-03:30 CEST"


def test_holidays_of_the_office_are_outside_business_hours() -> None:
    boxing_day_london = date(2026, 12, 28)  # 26 December is a Saturday: Monday is the holiday
    session = count(
        local(LONDON, boxing_day_london, time(10)),
        local(LONDON, boxing_day_london, time(12)),
        LONDON,
        rate=Decimal(2),
    )
    assert session.units == 4
    freedom_day = date(2028, 4, 25)  # a Tuesday, a holiday in Portugal only
    lisbon = count(
        local(LISBON, freedom_day, time(10)),
        local(LISBON, freedom_day, time(12)),
        LISBON,
        rate=Decimal(2),
    )
    berlin = count(
        local(BERLIN, freedom_day, time(10)),
        local(BERLIN, freedom_day, time(12)),
        BERLIN,
        rate=Decimal(2),
    )
    assert (lisbon.units, berlin.units) == (4, 2)
    thanksgiving = date(2026, 11, 26)
    us = count(
        local(NEW_YORK, thanksgiving, time(9)),
        local(NEW_YORK, thanksgiving, time(10)),
        NEW_YORK,
        rate=Decimal("1.5"),
    )
    assert us.units == Decimal("1.5")


def test_a_lot_is_valid_for_twelve_months() -> None:
    assert expiry(date(2026, 1, 15)) == date(2027, 1, 15)
    assert expiry(date(2028, 2, 29)) == date(2029, 3, 1)


# --- the ledger's sums -------------------------------------------------------------------------

lots_strategy = st.lists(
    st.tuples(st.integers(1, 30), st.integers(-30, 400)), min_size=1, max_size=5
)


@settings(max_examples=300, deadline=None)
@given(bought=lots_strategy, taken=st.integers(0, 150), reserved=st.integers(0, 60))
def test_units_are_taken_from_the_lot_first_to_expire_and_never_twice(
    bought: list[tuple[int, int]], taken: int, reserved: int
) -> None:
    today = date(2026, 11, 18)
    lots = [
        Lot(n + 1, Decimal(units), today - timedelta(days=365), today + timedelta(days=days), "")
        for n, (units, days) in enumerate(bought)
    ]
    lines = [Entry(lot.id, PURCHASE, lot.units, Decimal(0), lot.id, None, None) for lot in lots]
    lines.append(Entry(99, RESERVE, Decimal(reserved), Decimal(0), None, 1, None))
    before = balance(lots, lines, today)
    parts = allocate(before, Decimal(taken))
    assert sum(units for _, units in parts) == taken
    valid = [lot for lot in before.lots if lot.valid]
    left = {lot.lot.id: lot.left for lot in valid}
    for lot_id, units in parts:
        assert lot_id is None or units <= left[lot_id]
    used = [lot_id for lot_id, _ in parts if lot_id is not None]
    order = [lot.lot.id for lot in valid]
    assert used == order[: len(used)]  # first to expire, first used
    if any(lot_id is None for lot_id, _ in parts):  # beyond the lots only when all are empty
        assert sum(left.values()) < taken
    lines += [
        Entry(100 + n, PENDING, units, Decimal(0), lot_id, 1, 7)
        for n, (lot_id, units) in enumerate(parts)
    ]
    after = balance(lots, lines, today)
    assert after.available == before.available - taken
    assert all(lot.left >= 0 for lot in after.lots)
    assert after.available == sum(lot.left for lot in after.lots) - after.beyond - after.reserved
    assert sum(free_in(after, lot.lot.id) for lot in after.lots) == max(
        0, sum(lot.left for lot in after.lots) - after.reserved - after.beyond
    )


def test_securehands_mails_are_english_only_with_text_and_html_for_customers() -> None:
    """R1.11, §3.11.1: one English template per SecureHands mail; customers get HTML too."""
    from gateway.core.vocabulary import Audience
    from gateway.outbound.contexts import CONTEXTS
    from gateway.outbound.contexts import securehands as contexts
    from workers.render import TEMPLATES

    ours = [key for key, context in CONTEXTS.items() if context.__module__ == contexts.__name__]
    assert len(ours) == 11
    for template, audience in ours:
        stem = f"{template}_{audience}"
        assert (TEMPLATES / f"{stem}.en.txt.j2").is_file(), stem
        assert not list(TEMPLATES.glob(f"{stem}.de.*")), stem
        assert not list(TEMPLATES.glob(f"{stem}.fr.*")), stem
        if audience == Audience.customer:
            assert (TEMPLATES / f"{stem}.en.html.j2").is_file(), stem
