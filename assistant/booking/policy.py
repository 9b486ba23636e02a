"""Booking policy as pure functions: windows, deadlines, quotas and suspension triggers.

Rule: this module decides, it does not fetch. Callers pass the Policy, the hospital's
time zone and the facts (visit dates of a patient's bookings, event times); the
functions answer with a refusal or None. A limit of 0 switches its rule off.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from assistant.config import Policy

QUOTA_WINDOWS = (("per_7_days", 7), ("per_90_days", 90))


def local_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """An aware datetime for a wall-clock time on a local day."""
    return datetime.combine(day, at, tzinfo=tz)


def release_moment(visit_date: date, days_ahead: int, at: time, tz: ZoneInfo) -> datetime:
    return local_moment(visit_date - timedelta(days=days_ahead), at, tz)


def draw_moment(requests_open_at: datetime, draw_time: time, tz: ZoneInfo) -> datetime:
    """The draw: at draw_time on the day requests open, or the next day when that time
    has already passed by then (a window is never empty)."""
    opened = requests_open_at.astimezone(tz)
    moment = local_moment(opened.date(), draw_time, tz)
    return moment if moment > opened else local_moment(opened.date() + timedelta(days=1), draw_time, tz)


def next_release(policy: Policy, tz: ZoneInfo, now: datetime) -> datetime:
    """The department's next daily release moment after `now`: when places freed
    today with nobody waiting go back on sale."""
    today = now.astimezone(tz).date()
    moment = local_moment(today, policy.release_time, tz)
    return moment if moment > now else local_moment(today + timedelta(days=1), policy.release_time, tz)


def booking_closes_at(policy: Policy, visit_date: date, tz: ZoneInfo) -> datetime:
    """Booking closes at close_time on the day before the visit."""
    return local_moment(visit_date - timedelta(days=1), policy.close_time, tz)


def cancel_deadline(policy: Policy, visit_date: date, tz: ZoneInfo) -> datetime:
    return local_moment(visit_date - timedelta(days=1), policy.cancel_deadline_time, tz)


@dataclass(frozen=True)
class QuotaBreach:
    quota: str
    limit: int


@dataclass(frozen=True)
class HeldBooking:
    """A booking that counts towards quotas: its visit day and department."""

    visit_date: date
    department_id: int


def quota_breach(policy: Policy, held: Sequence[HeldBooking], new: HeldBooking) -> QuotaBreach | None:
    """The first quota that one more booking would exceed, or None."""
    same_day = [b for b in held if b.visit_date == new.visit_date]
    if policy.per_department_per_day and (
        sum(1 for b in same_day if b.department_id == new.department_id)
        >= policy.per_department_per_day
    ):
        return QuotaBreach("per_department_per_day", policy.per_department_per_day)
    if policy.per_visit_day and len(same_day) >= policy.per_visit_day:
        return QuotaBreach("per_visit_day", policy.per_visit_day)
    dates = [b.visit_date for b in held] + [new.visit_date]
    for quota, days in QUOTA_WINDOWS:
        limit = getattr(policy, quota)
        if limit and busiest_window(dates, days, containing=new.visit_date) > limit:
            return QuotaBreach(quota, limit)
    return None


def busiest_window(dates: Iterable[date], days: int, containing: date | None = None) -> int:
    """The most visit days that fall within any `days` consecutive days (counting
    repeats); with `containing`, only windows that include that day."""
    ordered = sorted(dates)
    if not ordered:
        return 0
    best = 0
    # A busiest window can always start on a visit day (moving its start forward to the
    # first visit loses nothing), so try each visit day as a start and slide the end.
    end = 0
    for start, first in enumerate(ordered):
        last_day = first + timedelta(days=days - 1)
        while end < len(ordered) and ordered[end] <= last_day:
            end += 1
        if containing is None or first <= containing <= last_day:
            best = max(best, end - start)
    return best


def quotas_respected(policy: Policy, held: Sequence[HeldBooking]) -> QuotaBreach | None:
    """Check a whole set of bookings against every quota (for tests and audits)."""
    for (day, dept), n in Counter((b.visit_date, b.department_id) for b in held).items():
        if policy.per_department_per_day and n > policy.per_department_per_day:
            return QuotaBreach("per_department_per_day", policy.per_department_per_day)
    for n in Counter(b.visit_date for b in held).values():
        if policy.per_visit_day and n > policy.per_visit_day:
            return QuotaBreach("per_visit_day", policy.per_visit_day)
    dates = [b.visit_date for b in held]
    for quota, days in QUOTA_WINDOWS:
        limit = getattr(policy, quota)
        if limit and busiest_window(dates, days) > limit:
            return QuotaBreach(quota, limit)
    return None


@dataclass(frozen=True)
class SuspensionRule:
    reason: str  # no_shows | cancellations
    limit: int
    window: timedelta
    length: timedelta


def suspension_rules(policy: Policy) -> dict[str, SuspensionRule]:
    return {
        "no_shows": SuspensionRule(
            "no_shows", policy.no_show_limit,
            timedelta(days=policy.no_show_window_days),
            timedelta(days=policy.no_show_suspension_days),
        ),
        "cancellations": SuspensionRule(
            "cancellations", policy.cancel_limit,
            timedelta(days=policy.cancel_window_days),
            timedelta(days=policy.cancel_suspension_days),
        ),
    }


def suspension_due(rule: SuspensionRule, event_times: Sequence[datetime], now: datetime,
                   counted_since: datetime | None) -> bool:
    """True when the events within the window reach the limit. Events before
    `counted_since` (the start of the last suspension for this rule) were already
    punished once and don't count again."""
    if not rule.limit:
        return False
    window_start = now - rule.window
    if counted_since is not None:
        window_start = max(window_start, counted_since)
    return sum(1 for t in event_times if window_start < t <= now) >= rule.limit
