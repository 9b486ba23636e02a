"""/admin/dashboard: how full the next 14 days are, per department, and how the outbox
is doing.

Rule: the charts are drawn on the server as inline SVG (no JavaScript, nothing from a
CDN): the geometry is worked out here and the template only writes it, with colours
as presentation attributes, never style= (the CSP allows no inline styles). Each chart
has <title>s and a table of the same numbers under it. Figures come from
booking.dashboard, a few aggregate statements however large the hospital. The outbox
shows counts, times and masked errors, never an address or a message's contents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton
from flask import render_template

from assistant.booking import dashboard as figures, outbox as box, service
from assistant.channels.render import pick_name
from assistant.i18n import N_, babel_locale
from assistant.i18n.format import format_date_long, format_date_short
from assistant.web import security
from assistant.web.admin import MENU, admin, careline
from assistant.web.ui import gettext as _, ui_locale

MENU.append(("admin.dashboard", N_("Dashboard"), "clerk"))

# Words for what the outbox stores as ids; an unknown id is shown as it is.
CHANNELS = {"phone": N_("SMS"), "telegram": N_("Telegram"), "console": N_("Console (demo)")}
MESSAGES = {box.BOOKED_FOR_YOU: N_("Booked for the patient"),
            box.CANCELLED_FOR_YOU: N_("Cancelled for the patient"),
            box.MOVED_FOR_YOU: N_("Moved for the patient")}

DAYS = 14
# The chart's user units: one column per day, the numbers above, the day below.
STEP, BAR, TOP, PLOT, BOTTOM = 60, 44, 26, 120, 46


@dataclass(frozen=True)
class Bar:
    day: str  # ISO date, for data-day
    weekday: str
    date: str  # day and month, short
    label: str  # "booked/capacity"
    title: str
    closed: bool
    full: bool
    x: int
    fill_y: float
    fill_height: float


@dataclass(frozen=True)
class Chart:
    department_id: int
    name: str
    booked: int
    capacity: int
    bars: tuple[Bar, ...]
    width: int = DAYS * STEP
    height: int = TOP + PLOT + BOTTOM
    top: int = TOP
    plot: int = PLOT
    bar: int = BAR


@admin.get("/dashboard")
@security.requires("clerk")
def dashboard():
    app = careline()
    now = app.clock()
    tz = _zone()
    today = now.astimezone(tz).date()
    locale = ui_locale()
    charts = [_chart(load, locale) for load in
              figures.department_loads(app.services, first_day=today, days=DAYS)]
    outbox = figures.outbox_status(app.services)
    oldest_age = _age(now - outbox.oldest_pending_at) if outbox.oldest_pending_at else None
    return render_template(
        "admin/dashboard.html", charts=charts, days=DAYS, outbox=outbox, oldest_age=oldest_age,
        channels=CHANNELS, messages=MESSAGES,
        first=format_date_short(today, locale, tz),
        last=format_date_short(today + timedelta(days=DAYS - 1), locale, tz),
        local=lambda moment: moment.astimezone(tz).strftime("%Y-%m-%d %H:%M"))


def _zone() -> ZoneInfo:
    app = careline()
    hospital = service.hospital(app.services)
    return ZoneInfo(hospital.timezone if hospital else app.settings.timezone)


def _chart(load: figures.DepartmentLoad, locale: str) -> Chart:
    name = pick_name(load.department.names, locale) or load.department.code
    return Chart(load.department.id, name, load.booked, load.capacity,
                 tuple(_bar(offset, day, locale) for offset, day in enumerate(load.days)))


def _bar(offset: int, day: figures.DayLoad, locale: str) -> Bar:
    when = format_date_long(day.day, locale, None)
    if day.closed:
        title = _("{day}: closed, no slots", day=when)
    else:
        title = _("{day}: {booked} of {capacity} places booked", day=when, booked=day.booked,
                  capacity=day.capacity)
    height = round(PLOT * min(day.share, 1.0), 1)  # the filled part grows from the bottom
    loc = babel_locale(locale)
    return Bar(day.day.isoformat(), format_date(day.day, "EEE", locale=loc),
               format_skeleton("MMMd", day.day, locale=loc), f"{day.booked}/{day.capacity}", title,
               day.closed, day.capacity > 0 and day.booked >= day.capacity,
               offset * STEP + (STEP - BAR) // 2, TOP + PLOT - height, height)


def _age(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return _("{n} min", n=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("{h} h {m} min", h=hours, m=minutes)
    return _("{d} days {h} h", d=hours // 24, h=hours % 24)
