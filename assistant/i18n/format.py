"""Dates and times as a patient reads or hears them: their language, the hospital's clock.

Rule: every date or time shown or spoken to a patient is made here, by Babel, in
the hospital's time zone. Written forms follow the locale's own CLDR patterns, so a
new language needs no code. Spoken forms write weekday and month in full and avoid
zero-padded or digits-only times, so a TTS engine reads them naturally; English,
Chinese and Spanish times are spelled out in words, other languages get CLDR's
"9:30 in the morning" style.

Aware datetimes are converted into the hospital zone first. Naive datetimes are
taken as hospital time already, and dates have no zone. Catalog names ("zh_Hans")
are mapped to Babel locales ("zh_Hans_CN") by i18n.babel_locale.

Nothing here raises: an unknown locale formats as English, an unknown zone leaves a
datetime in its own zone, an ISO string is parsed, and anything else gives "".
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, tzinfo
from typing import Callable, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.dates import format_time as babel_format_time
from babel.dates import match_skeleton, tokenize_pattern, untokenize_pattern

from assistant.i18n import babel_locale

log = logging.getLogger(__name__)

Moment = Union[date, datetime, time, str]
Zone = Union[tzinfo, str, None]

# CLDR puts narrow and regular no-break spaces in times ("9:30\u202fAM"). Any of
# them turns an English SMS into UCS-2, halving its room, so plain spaces go out.
_ODD_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " ", "\u2009": " ", "\u2007": " "})


# --- Written ------------------------------------------------------------------------


def format_date_long(value: Moment, locale: str, tz: Zone) -> str:
    """The locale's full date: "Thursday, December 3, 2026", "2026年12月3日星期四"."""
    day = _local_date(value, tz)
    return _babel(lambda loc: format_date(day, "full", locale=loc), day, locale)


def format_date_plain(value: Moment, locale: str, tz: Zone) -> str:
    """A date without its weekday, for birth dates, short enough for a read-back that
    also names the visit: "Dec 31, 1949", "1949年12月31日", "31 dic 1949". The month
    stays a word."""
    day = _local_date(value, tz)
    return _babel(lambda loc: format_date(day, "medium", locale=loc), day, locale)


def format_date_short(value: Moment, locale: str, tz: Zone) -> str:
    """Weekday, day and month name for SMS: "Thu, Dec 3", "12月3日周四", "jue, 3 dic".

    The month is a word, never a number, so 3/12 and 12/3 cannot be confused.
    """
    day = _local_date(value, tz)
    return _babel(lambda loc: format_skeleton("MMMEd", day, locale=loc), day, locale)


def format_time(value: Moment, locale: str, tz: Zone) -> str:
    """The locale's short time: "9:30 AM", "09:30", "9:30".

    Each is unambiguous: a 24-hour clock or an explicit AM/PM.
    """
    moment = _local_time(value, tz)
    return _babel(lambda loc: babel_format_time(moment, "short", locale=loc), moment, locale)


# --- Spoken ---------------------------------------------------------------------------


def format_date_spoken(value: Moment, locale: str, tz: Zone) -> str:
    """Weekday, day and month in full: "Thursday the 3rd of December", "12月3日星期四"."""
    day = _local_date(value, tz)

    def speak(loc: Locale) -> str:
        return _SPOKEN_DATES.get(loc.language, _cldr_spoken_date)(day, loc)

    return _babel(speak, day, locale)


def format_time_spoken(value: Moment, locale: str, tz: Zone) -> str:
    """The time in words: "half past nine in the morning", "上午九点半",
    "las nueve y media de la mañana"; CLDR's "9:30 in the morning" style elsewhere."""
    moment = _local_time(value, tz)

    def speak(loc: Locale) -> str:
        words = _SPOKEN_TIMES.get(loc.language)
        if words is None:
            return format_skeleton("Bhm", moment, locale=loc)
        period = babel_format_time(moment, "B", locale=loc)
        return words(moment.hour, moment.minute, period)

    return _babel(speak, moment, locale)


def _english_spoken_date(day: date, loc: Locale) -> str:
    weekday = format_date(day, "EEEE", locale=loc)
    month = format_date(day, "MMMM", locale=loc)
    return f"{weekday} the {_english_ordinal(day.day)} of {month}"


_ENGLISH_ORDINAL_SUFFIXES = {1: "st", 2: "nd", 3: "rd"}


def _english_ordinal(number: int) -> str:
    # 11th, 12th and 13th break the last-digit rule.
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{_ENGLISH_ORDINAL_SUFFIXES.get(number % 10, 'th')}"


def _cldr_spoken_date(day: date, loc: Locale) -> str:
    """The locale's weekday-day-month pattern, with weekday and month widened to full words."""
    skeleton = match_skeleton("MMMMEEEEd", loc.datetime_skeletons)
    if skeleton is None:
        return format_date(day, "long", locale=loc)
    pattern = str(loc.datetime_skeletons[skeleton])
    return format_date(day, _widen(pattern), locale=loc)


def _widen(pattern: str) -> str:
    """Turn abbreviated weekdays and month names into full ones; numeric months stay."""
    tokens = []
    for kind, value in tokenize_pattern(pattern):
        if kind == "field":
            letter, width = value
            if letter in "Ec" or (letter in "ML" and width == 3):
                value = (letter, 4)
        tokens.append((kind, value))
    return untokenize_pattern(tokens)


def _english_spoken_time(hour: int, minute: int, period: str) -> str:
    if minute == 0 and hour in (0, 12):
        return "midnight" if hour == 0 else "twelve noon"
    clock = _english_number(hour % 12 or 12)
    # "Quarter to ten" names the next hour; past-forms and plain minutes don't,
    # which is easier to follow on the phone.
    spoken = {0: f"{clock} o'clock", 15: f"quarter past {clock}", 30: f"half past {clock}"}
    minutes = ("oh " if minute < 10 else "") + _english_number(minute)
    return f"{spoken.get(minute, f'{clock} {minutes}')} {period}"


_ENGLISH_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_ENGLISH_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty"}


def _english_number(number: int) -> str:
    if number < 20:
        return _ENGLISH_UNITS[number]
    tens, units = divmod(number, 10)
    return _ENGLISH_TENS[tens] + (f"-{_ENGLISH_UNITS[units]}" if units else "")


def _spanish_spoken_time(hour: int, minute: int, period: str) -> str:
    clock = hour % 12 or 12
    hours = "la una" if clock == 1 else f"las {_spanish_number(clock)}"
    minutes = {0: "", 15: " y cuarto", 30: " y media"}.get(minute, f" y {_spanish_number(minute)}")
    return f"{hours}{minutes} {period}"


_SPANISH_UNITS = (
    "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce "
    "quince dieciséis diecisiete dieciocho diecinueve veinte veintiuno veintidós veintitrés "
    "veinticuatro veinticinco veintiséis veintisiete veintiocho veintinueve"
).split()
_SPANISH_TENS = {3: "treinta", 4: "cuarenta", 5: "cincuenta"}


def _spanish_number(number: int) -> str:
    if number < 30:
        return _SPANISH_UNITS[number]
    tens, units = divmod(number, 10)
    return _SPANISH_TENS[tens] + (f" y {_SPANISH_UNITS[units]}" if units else "")


def _chinese_spoken_time(hour: int, minute: int, period: str) -> str:
    clock = hour % 12 or 12
    # Two o'clock is 两点, never 二点; writing it out spares the TTS engine the choice.
    hours = "两" if clock == 2 else _chinese_number(clock)
    if minute == 0:
        minutes = ""
    elif minute == 30:
        minutes = "半"
    else:
        minutes = ("零" if minute < 10 else "") + _chinese_number(minute) + "分"
    return f"{period}{hours}点{minutes}"


_CHINESE_DIGITS = "零一二三四五六七八九"


def _chinese_number(number: int) -> str:
    if number < 10:
        return _CHINESE_DIGITS[number]
    tens, units = divmod(number, 10)
    prefix = "" if tens == 1 else _CHINESE_DIGITS[tens]
    return prefix + "十" + (_CHINESE_DIGITS[units] if units else "")


_SPOKEN_DATES: dict[str, Callable[[date, Locale], str]] = {"en": _english_spoken_date}
_SPOKEN_TIMES: dict[str, Callable[[int, int, str], str]] = {
    "en": _english_spoken_time,
    "es": _spanish_spoken_time,
    "zh": _chinese_spoken_time,
}


# --- Inputs ---------------------------------------------------------------------------


def _babel(make: Callable[[Locale], str], value: object, locale: str) -> str:
    """Run one Babel formatter with the catalog's locale; "" for a value it can't format."""
    if value is None:
        return ""
    try:
        return make(babel_locale(locale)).translate(_ODD_SPACES)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        log.warning("cannot format %r for %r: %s", value, locale, error)
        return ""


def _zone(tz: Zone) -> tzinfo | None:
    if isinstance(tz, tzinfo):
        return tz
    if isinstance(tz, str) and tz:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r; times stay in their own zone", tz)
    return None


def _coerce(value: Moment) -> date | time | None:
    """Dates, datetimes and times pass through; ISO strings are parsed; else None."""
    if isinstance(value, (date, time)):
        return value
    if isinstance(value, str):
        for parse in (datetime.fromisoformat, time.fromisoformat):
            try:
                return parse(value.strip())
            except ValueError:
                continue
    return None


def _local(value: Moment, tz: Zone) -> date | time | None:
    moment = _coerce(value)
    zone = _zone(tz)
    if isinstance(moment, datetime) and moment.tzinfo is not None and zone is not None:
        return moment.astimezone(zone)
    return moment


def _local_date(value: Moment, tz: Zone) -> date | None:
    moment = _local(value, tz)
    if isinstance(moment, datetime):
        return moment.date()
    return moment if isinstance(moment, date) else None


def _local_time(value: Moment, tz: Zone) -> time | None:
    moment = _local(value, tz)
    if isinstance(moment, datetime):
        return moment.time()  # drops the zone: the clock reading is already local
    if isinstance(moment, time):
        return moment.replace(tzinfo=None)
    return time(0, 0) if isinstance(moment, date) else None
