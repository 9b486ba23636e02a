"""Forgiving input: turn one raw message into one small typed value, or None.

Rule: this module knows words in every shipped language (English, Simplified Chinese,
Spanish) and how people type numbers, answers, dates and times. It knows nothing about
steps, prompts, bookings or channels: the engine decides which parser a step needs.

- Standard library only. "Today" is a parameter; no clock is read here.
- Nothing raises on any string (empty, huge, emoji, control characters, lone
  surrogates). Not understood is None.
- Ambiguity is refused, never guessed: two different numbers, dates, times or matching
  options give None, and the engine asks again.
- Every function reads at most MAX_INPUT_CHARS characters, so a huge message stays cheap.
"""

from __future__ import annotations

import datetime
import difflib
import enum
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from assistant.engine.words import Words

__all__ = [
    "MAX_INPUT_CHARS",
    "DayPart",
    "GlobalKey",
    "is_greeting",
    "match_label",
    "match_option",
    "parse_choice",
    "normalise",
    "parse_birth_date",
    "parse_date",
    "parse_day_part",
    "parse_global_key",
    "parse_id_number",
    "parse_language",
    "parse_number",
    "parse_time",
    "parse_yes_no",
    "rank_options",
    "Ranked",
    "use_words",
    "option_words",
    "language_markers",
]

MAX_INPUT_CHARS = 1000


# --- Text folding ---------------------------------------------------------------------


def _is_variation_selector(ch: str) -> bool:
    cp = ord(ch)
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF


def _clean(text: str) -> str:
    """NFKC, control/format characters dropped, whitespace collapsed; case and
    punctuation kept (the keypad's "*" lives here)."""
    text = unicodedata.normalize("NFKC", text[:MAX_INPUT_CHARS])
    kept = []
    for ch in text:
        if ch.isspace():
            kept.append(" ")
        # Category C covers controls, bidi marks, zero-width joiners and lone surrogates.
        elif unicodedata.category(ch)[0] != "C" and not _is_variation_selector(ch):
            kept.append(ch)
    return " ".join("".join(kept).split())


def _is_edge_junk(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZ"


def _strip_edges(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_edge_junk(text[start]):
        start += 1
    while end > start and _is_edge_junk(text[end - 1]):
        end -= 1
    return text[start:end]


def normalise(text: str) -> str:
    """NFKC, no control or format characters, single spaces, casefolded, with
    surrounding punctuation and symbols stripped. "  ＹＥＳ!! " -> "yes"."""
    # casefold can leave decomposed forms ("İ"), so NFKC again afterwards.
    folded = unicodedata.normalize("NFKC", _clean(text).casefold())
    return _strip_edges(folded)


_APOSTROPHES = str.maketrans("", "", "'\u2018\u2019\u02bc`")


@lru_cache(maxsize=4096)  # word tables and department keywords are folded every turn
def _fold(text: str) -> str:
    """normalise() without accents or apostrophes: the form every word table is kept in,
    so "Atrás", "atras" and "ATRÁS" look alike, and "that's" is "thats"."""
    text = normalise(text).translate(_APOSTROPHES)
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return " ".join(unicodedata.normalize("NFC", bare).split())


def _is_unspaced_char(ch: str) -> bool:
    """Scripts written without spaces between words: match these as substrings."""
    cp = ord(ch)
    return (
        0x2E80 <= cp <= 0x9FFF  # CJK radicals, kana, CJK ideographs
        or 0xF900 <= cp <= 0xFAFF
        or 0xFF66 <= cp <= 0xFF9F
        or 0x20000 <= cp <= 0x3FFFF
        or 0x0E00 <= cp <= 0x0EFF  # Thai, Lao
        or 0x1000 <= cp <= 0x109F  # Myanmar
        or 0x1780 <= cp <= 0x17FF  # Khmer
    )


def _is_unspaced(phrase: str) -> bool:
    return any(_is_unspaced_char(ch) for ch in phrase)


def _is_spaced_letter(ch: str) -> bool:
    # Digits are boundaries on purpose: "9am" contains the word "am".
    return ch.isalpha() and not _is_unspaced_char(ch)


def _phrase_spans(text: str, phrase: str) -> list[tuple[int, int]]:
    """Where phrase occurs in text: as a substring for Chinese-like phrases, as whole
    words otherwise (so "stop" is not found in "bus stops")."""
    if not phrase:
        return []
    whole_words = not _is_unspaced(phrase)
    spans = []
    start = text.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        if not whole_words or (
            (start == 0 or not _is_spaced_letter(text[start - 1]))
            and (end == len(text) or not _is_spaced_letter(text[end]))
        ):
            spans.append((start, end))
        start = text.find(phrase, start + 1)
    return spans


def _starts_with_phrase(text: str, phrase: str) -> bool:
    if not phrase or not text.startswith(phrase):
        return False
    end = len(phrase)
    return _is_unspaced(phrase) or end == len(text) or not _is_spaced_letter(text[end])


def _blank(text: str, span: tuple[int, int]) -> str:
    """Replace a span by spaces of the same length, so later searches skip it and
    offsets stay valid."""
    start, end = span
    return text[:start] + " " * (end - start) + text[end:]


def _folded_table(table: dict[str, Iterable[str]]) -> dict[str, str]:
    """{value: [words]} -> {folded word: value}. Words are written naturally (with
    accents) and folded once, when they are installed."""
    return {_fold(word): value for value, words in table.items() for word in words}


# --- Global keys ------------------------------------------------------------------------


class GlobalKey(enum.Enum):
    """Keys that work in every step and language."""

    HUMAN = "human"
    REPEAT = "repeat"
    BACK = "back"
    HELP = "help"
    MENU = "menu"
    STOP = "stop"
    START = "start"
    SLOWER = "slower"  # speak more slowly (said to the phone; harmless in text)


_KEYPAD_KEYS = {"0": GlobalKey.HUMAN, "9": GlobalKey.REPEAT, "*": GlobalKey.BACK}

# Never add "cancel": Twilio treats CANCEL as an opt-out and stops all messages.
# END, QUIT, UNSUBSCRIBE, STOPALL, OPTOUT, REVOKE are carrier opt-outs too, and "TD"
# (退订) is the Chinese carriers' one; the words files list them all as STOP.
_GLOBAL_KEY_BY_WORD: dict[str, GlobalKey] = {}  # filled by use_words

def parse_global_key(text: str) -> GlobalKey | None:
    """A global key, only when it is the whole message: "0", "9", "*", "help", "菜单",
    "atrás", "STOP" ... Plain "cancel" is never a key."""
    keypad = _KEYPAD_KEYS.get(_clean(text))
    if keypad is not None:
        return keypad
    folded = _fold(text)
    return _KEYPAD_KEYS.get(folded) or _GLOBAL_KEY_BY_WORD.get(folded)


# --- Greetings --------------------------------------------------------------------------

_GREETINGS: frozenset[str] = frozenset()  # filled by use_words


def is_greeting(text: str) -> bool:
    """A message that is only a greeting ("hello", "你好", "hola", "Hi!")."""
    return _fold(text) in _GREETINGS


# --- Language ---------------------------------------------------------------------------

_LANGUAGE_BY_NAME: dict[str, str] = {}  # filled by use_words


def parse_language(text: str) -> str | None:
    """A language named in its own or another shipped language, as a catalog code
    ("English" -> "en", "中文" -> "zh_Hans", "español" -> "es"). Whole message only."""
    return _LANGUAGE_BY_NAME.get(_fold(text))


# --- Numbers ----------------------------------------------------------------------------

# Filled by use_words: number words by value, and where "one" is a pronoun.
_CARDINAL_WORDS: dict[str, str] = {}
_ORDINAL_WORDS: dict[str, str] = {}
_NUMBER_WORDS: dict[str, int] = {}
# "the second one", "that one": here "one" is a pronoun, not the number 1.
_ONE_IS_PRONOUN_BEFORE_ORDINALS = frozenset(
    {"the", "that", "this", "which", "other", "last", "next", "each", "any", "no", "some"})
_ONE_IS_PRONOUN_AFTER: frozenset[str] = _ONE_IS_PRONOUN_BEFORE_ORDINALS
_DIGIT_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)")
_TOKEN = re.compile(r"[^\W_]+")
_DIGIT_RUN = re.compile(r"\d+")
_LONG_DIGIT_RUN = re.compile(r"\d{4,}")

_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100}
_CN_NUMERAL = "[零〇一二两兩三四五六七八九十百]"
_CN_NUMERAL_RUN = re.compile(f"{_CN_NUMERAL}+")
# Everyday words that contain a numeral but mean no number ("看一下", "十分感谢").
_CN_NUMBERLESS_WORDS = (
    "一下", "一点", "一些", "一样", "一起", "一直", "一般", "一定", "一会", "一遍",
    "一次", "万一", "统一", "唯一", "一切", "不一", "十分",
)


def _chinese_value(run: str) -> int | None:
    """Value of a Chinese numeral: 三 3, 十二 12, 二十 20, 一百零五 105.
    Two digits in a row ("三四", "three or four") are not one number."""
    total, pending = 0, None
    for ch in run:
        digit = _CN_DIGITS.get(ch)
        if digit is not None:
            if pending:  # "三四": a range, not a number
                return None
            pending = digit
        else:
            total += (1 if pending is None else pending) * _CN_UNITS[ch]
            pending = None
    return total + (pending or 0)


def _chinese_positional(run: str) -> int | None:
    """Digit-by-digit Chinese numbers, as years are written: 一九五〇 -> 1950."""
    if not run or any(ch not in _CN_DIGITS for ch in run):
        return None
    return int("".join(str(_CN_DIGITS[ch]) for ch in run))


def _int_or_chinese(token: str) -> int | None:
    if token.isdecimal():
        return int(token)
    return _chinese_value(token)


def _digit_numbers(folded: str) -> Iterator[int]:
    for run in _DIGIT_RUN.findall(folded):
        yield int(run)


def _word_numbers(folded: str) -> Iterator[int]:
    tokens = _TOKEN.findall(folded)
    for index, token in enumerate(tokens):
        value = _NUMBER_WORDS.get(token)
        if value is None:
            continue
        previous = tokens[index - 1] if index else ""
        if token == "one" and (
            previous in _ONE_IS_PRONOUN_AFTER or _DIGIT_ORDINAL.fullmatch(previous)
        ):
            continue
        yield value


def _chinese_numbers(folded: str) -> Iterator[int | None]:
    for word in _CN_NUMBERLESS_WORDS:
        folded = folded.replace(word, " ")
    for run in _CN_NUMERAL_RUN.findall(folded):
        yield _chinese_value(run)


def parse_number(text: str) -> int | None:
    """The one number in a message: "2", "２", "option 2", "#2", "two", "second",
    "第二个", "两", "la dos". Two different numbers ("1 or 2") or a digit string
    longer than 3 (an ID, not a choice) give None."""
    folded = _fold(text)
    if not folded or _LONG_DIGIT_RUN.search(folded):
        return None
    values = {*_digit_numbers(folded), *_word_numbers(folded), *_chinese_numbers(folded)}
    if len(values) != 1:
        return None
    value = values.pop()
    return value if value is not None and value <= 999 else None


# --- Yes / no ---------------------------------------------------------------------------

# Longest phrase wins, so "no problem" is a yes and "not right" a no. Filled by use_words.
_ANSWER_BY_PHRASE: dict[str, str] = {}
_ANSWER_PHRASES: list[str] = []
# "是不是", "对不起", "行不行": a yes-word followed by a negation is a question or an
# apology, not a yes.
_CHINESE_NEGATIONS = ("不", "否", "没")
_NOT_YES_WORDS = ("好像", "是否")
_YES_EMOJI = frozenset("👍👌✅✔☑🆗")
_NO_EMOJI = frozenset("👎❌✖🙅")
_SKIN_TONES = frozenset(chr(cp) for cp in range(0x1F3FB, 0x1F400))


def _emoji_answer(text: str) -> bool | None:
    marks = {ch for ch in _clean(text) if ch not in _SKIN_TONES and not ch.isspace()}
    if marks and marks <= _YES_EMOJI:
        return True
    if marks and marks <= _NO_EMOJI:
        return False
    return None


def parse_yes_no(text: str) -> bool | None:
    """A yes or no at the start of the message, in any language: "yes please", "ok!",
    "是的，谢谢", "sí, vale", "no es". Digits are not answers here."""
    folded = _fold(text)
    if not folded:
        return _emoji_answer(text)
    if folded.startswith(_NOT_YES_WORDS):
        return None
    for phrase in _ANSWER_PHRASES:
        if not _starts_with_phrase(folded, phrase):
            continue
        is_yes = _ANSWER_BY_PHRASE[phrase] == "yes"
        if is_yes and _is_unspaced(phrase) and folded[len(phrase):].startswith(_CHINESE_NEGATIONS):
            return None
        return is_yes
    return None


# --- Dates ------------------------------------------------------------------------------

_MONTH_BY_NAME: dict[str, int] = {}  # filled by use_words
_NOT_LETTER_BEFORE = r"(?<![^\W\d_])"
_NOT_LETTER_AFTER = r"(?![^\W\d_])"
_DAY_NUMBER = r"(?P<day>\d{1,2})(?:st|nd|rd|th|o|ro)?"  # "1º" is "1o" after NFKC
_YEAR_NUMBER = r"(?P<year>\d{4})"

# "3 December", "3rd of December", "el 3 de diciembre de 2026", "7 March 1950", and
# "Dec 3", "December 3rd", "March 7, 1950": built from the month names by use_words.
_DAY_MONTH_NAME = _MONTH_NAME_DAY = re.compile(r"(?!x)x")
# "2026-12-03", "2026/12/3", "1950.3.7"
_YEAR_MONTH_DAY = re.compile(
    r"(?<![\d/.\-])(?P<year>\d{4})(?P<sep>[-/.])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})(?!\d)"
)
# "3/12/2026": day/month or month/day, by locale
_SHORT_SHORT_YEAR = re.compile(
    r"(?<![\d/.\-])(?P<first>\d{1,2})(?P<sep>[-/.])(?P<second>\d{1,2})(?P=sep)(?P<year>\d{4})(?!\d)"
)
# "3/12", "3-12", "3.12" (but not "3/12/26", whose year we refuse to guess)
_SHORT_SHORT = re.compile(
    r"(?<![\d/.\-:])(?P<first>\d{1,2})(?P<sep>[-/.])(?P<second>\d{1,2})(?!\d)(?![-/.:]\d)"
)
# "19500307"
_COMPACT_YEAR_MONTH_DAY = re.compile(r"(?<!\d)(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})(?!\d)")
# "12月3日", "12月3号", "2026年12月3日", "十二月三号"
_CJK_MONTH_DAY = re.compile(
    rf"(?:(?P<year>\d{{4}}|[零〇一二三四五六七八九]{{4}})\s*年\s*)?"
    rf"(?<![\d零〇一二两兩三四五六七八九十])(?P<month>\d{{1,2}}|{_CN_NUMERAL}{{1,3}})\s*月\s*"
    rf"(?P<day>\d{{1,2}}|{_CN_NUMERAL}{{1,3}})(?!\d)\s*(?:日|号|號)?"
)
# "3号", "十五日": that day of this month, or of next month once it has passed
_CJK_DAY_OF_MONTH = re.compile(
    rf"(?<![\d零〇一二两兩三四五六七八九十])(?P<day>\d{{1,2}}|{_CN_NUMERAL}{{1,3}})\s*(?:日|号|號)"
)
_CJK_WEEKDAY = re.compile(
    r"(?P<week>下个|下個|下|上个|上個|上|这个|這個|这|這|本)?"
    r"(?:周|週|星期|礼拜|禮拜)(?P<day>[一二三四五六日天])"
)
_CJK_WEEKDAY_INDEX = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}

_WEEKDAY_BY_NAME: dict[str, str] = {}  # filled by use_words
_RELATIVE_DAYS: list[tuple[str, str]] = []  # (phrase, days from today), longest first
# "por la mañana", "esta mañana", "las mañanas" mean morning, not tomorrow.
_SPANISH_MORNING = re.compile(
    rf"{_NOT_LETTER_BEFORE}(?:la|las|esta|una|cada)\s+mananas?{_NOT_LETTER_AFTER}"
)


def _safe_date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except (ValueError, OverflowError):
        return None


def _days_after(today: datetime.date, days: int) -> datetime.date | None:
    try:
        return today + datetime.timedelta(days=days)
    except OverflowError:
        return None


def _upcoming(today: datetime.date, month: int, day: int) -> datetime.date | None:
    """A yearless date: this year's, or next year's once this year's has passed."""
    for year in (today.year, today.year + 1):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


def _upcoming_day_of_month(today: datetime.date, day: int) -> datetime.date | None:
    """"3号": the 3rd of this month, or of next month once it has passed."""
    next_month = (today.year + today.month // 12, today.month % 12 + 1)
    for year, month in ((today.year, today.month), next_month):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


def _next_weekday(today: datetime.date, weekday: int) -> datetime.date | None:
    """The next such day strictly after today: "monday" said on a Monday is next week."""
    return _days_after(today, (weekday - today.weekday() - 1) % 7 + 1)


def _weekday_in_next_week(today: datetime.date, weekday: int) -> datetime.date | None:
    """"下周三": Wednesday of next calendar week (weeks start on Monday)."""
    return _days_after(today, 7 - today.weekday() + weekday)


def _year_value(token: str) -> int | None:
    return int(token) if token.isdecimal() else _chinese_positional(token)


def _day_month(first: int, second: int, *, day_first: bool) -> tuple[int, int]:
    return (first, second) if day_first else (second, first)


@dataclass(frozen=True)
class _DateFindings:
    """What one message says about a date. An unreadable explicit date (31/2) is kept
    as None so that it spoils the whole answer instead of being skipped."""

    dates: tuple[datetime.date | None, ...]
    weekdays: tuple[int, ...]
    weekday_dates: tuple[datetime.date | None, ...]


def _find_explicit_dates(
    folded: str, today: datetime.date, *, day_first: bool
) -> tuple[str, list[datetime.date | None]]:
    found: list[datetime.date | None] = []

    def take(pattern: re.Pattern[str], read) -> None:
        nonlocal folded
        for match in list(pattern.finditer(folded)):
            found.append(read(match))
            folded = _blank(folded, match.span())

    def with_year_or_upcoming(year: int | None, month: int, day: int) -> datetime.date | None:
        return _upcoming(today, month, day) if year is None else _safe_date(year, month, day)

    take(
        _YEAR_MONTH_DAY,
        lambda m: _safe_date(int(m["year"]), int(m["month"]), int(m["day"])),
    )
    take(
        _SHORT_SHORT_YEAR,
        lambda m: _safe_date(
            int(m["year"]), *reversed(_day_month(int(m["first"]), int(m["second"]), day_first=day_first))
        ),
    )
    take(_CJK_MONTH_DAY, lambda m: _read_cjk_date(m, today))
    for pattern in (_DAY_MONTH_NAME, _MONTH_NAME_DAY):
        take(
            pattern,
            lambda m: with_year_or_upcoming(
                int(m["year"]) if m["year"] else None, _MONTH_BY_NAME[m["month"]], int(m["day"])
            ),
        )
    take(
        _SHORT_SHORT,
        lambda m: _upcoming(
            today, *reversed(_day_month(int(m["first"]), int(m["second"]), day_first=day_first))
        ),
    )
    return folded, found


def _read_cjk_date(match: re.Match[str], today: datetime.date) -> datetime.date | None:
    month = _int_or_chinese(match["month"])
    day = _int_or_chinese(match["day"])
    if month is None or day is None:
        return None
    if match["year"]:
        year = _year_value(match["year"])
        return None if year is None else _safe_date(year, month, day)
    return _upcoming(today, month, day)


def _find_chinese_weekdays(
    folded: str, today: datetime.date
) -> tuple[str, list[datetime.date | None], list[int]]:
    dates: list[datetime.date | None] = []
    weekdays: list[int] = []
    for match in list(_CJK_WEEKDAY.finditer(folded)):
        weekday = _CJK_WEEKDAY_INDEX[match["day"]]
        week = match["week"] or ""
        if week.startswith("下"):
            dates.append(_weekday_in_next_week(today, weekday))
        elif week.startswith("上"):
            dates.append(None)  # last week: in the past, never bookable
        else:
            weekdays.append(weekday)
        folded = _blank(folded, match.span())
    return folded, dates, weekdays


def _find_cjk_days_of_month(folded: str, today: datetime.date) -> list[datetime.date | None]:
    found: list[datetime.date | None] = []
    for match in _CJK_DAY_OF_MONTH.finditer(folded):
        day = _int_or_chinese(match["day"])
        found.append(None if day is None else _upcoming_day_of_month(today, day))
    return found


def _find_relative_days(folded: str, today: datetime.date) -> tuple[str, list[datetime.date | None]]:
    folded = _SPANISH_MORNING.sub(lambda m: " " * len(m[0]), folded)
    found: list[datetime.date | None] = []
    for phrase, offset in _RELATIVE_DAYS:
        for span in _phrase_spans(folded, phrase):
            found.append(_days_after(today, int(offset)))
            folded = _blank(folded, span)
    return folded, found


def _find_named_weekdays(folded: str) -> tuple[list[int], bool]:
    """Weekday names, and whether one of them points backwards ("last monday",
    "el lunes pasado")."""
    tokens = _TOKEN.findall(folded)
    weekdays, backwards = [], False
    for index, token in enumerate(tokens):
        weekday = _WEEKDAY_BY_NAME.get(token)
        if weekday is None:
            continue
        weekdays.append(int(weekday))
        before = tokens[index - 1] if index else ""
        after = tokens[index + 1] if index + 1 < len(tokens) else ""
        backwards = backwards or before == "last" or after == "pasado"
    return weekdays, backwards


def _find_dates(folded: str, today: datetime.date, *, day_first: bool) -> _DateFindings:
    folded, explicit = _find_explicit_dates(folded, today, day_first=day_first)
    folded, chinese_dates, chinese_weekdays = _find_chinese_weekdays(folded, today)
    explicit += chinese_dates
    explicit += _find_cjk_days_of_month(folded, today)
    folded, relative = _find_relative_days(folded, today)
    weekdays, backwards = _find_named_weekdays(folded)
    if backwards:
        explicit.append(None)
    weekdays += chinese_weekdays
    return _DateFindings(
        dates=tuple(explicit + relative),
        weekdays=tuple(weekdays),
        weekday_dates=tuple(_next_weekday(today, weekday) for weekday in weekdays),
    )


def _only(values: Iterable[object]) -> object | None:
    """The single distinct value, or None when there are none, several, or a None."""
    distinct = set(values)
    if len(distinct) != 1 or None in distinct:
        return None
    return distinct.pop()


def parse_date(text: str, today: datetime.date, *, day_first: bool) -> datetime.date | None:
    """A day the patient means: "tomorrow", "pasado mañana", "周三", "el lunes",
    "3/12", "12月3日", "Dec 3", "3 de diciembre", "2026-12-03". Weekday names mean the
    next such day strictly after today; a yearless date already past means next year.
    A weekday named alongside a date must agree with it."""
    if isinstance(today, datetime.datetime):
        today = today.date()
    folded = _fold(text)
    if not folded:
        return None
    findings = _find_dates(folded, today, day_first=day_first)
    if findings.dates:
        date = _only(findings.dates)
        if date is None or any(day != date.weekday() for day in findings.weekdays):
            return None
        return date
    return _only(findings.weekday_dates)


def parse_birth_date(text: str, *, day_first: bool) -> datetime.date | None:
    """A birth date with a full year (1900..2100): "1950-03-07", "19500307",
    "7/3/1950", "1950年3月7日", "7 de marzo de 1950", "March 7, 1950"."""
    folded = _fold(text)
    if not folded:
        return None
    found: list[datetime.date | None] = []
    for match in _YEAR_MONTH_DAY.finditer(folded):
        found.append(_safe_date(int(match["year"]), int(match["month"]), int(match["day"])))
    for match in _COMPACT_YEAR_MONTH_DAY.finditer(folded):
        found.append(_safe_date(int(match["year"]), int(match["month"]), int(match["day"])))
    for match in _SHORT_SHORT_YEAR.finditer(folded):
        day, month = _day_month(int(match["first"]), int(match["second"]), day_first=day_first)
        found.append(_safe_date(int(match["year"]), month, day))
    for match in _CJK_MONTH_DAY.finditer(folded):
        if match["year"]:
            found.append(_read_cjk_birth_date(match))
    for pattern in (_DAY_MONTH_NAME, _MONTH_NAME_DAY):
        for match in pattern.finditer(folded):
            if match["year"]:
                month = _MONTH_BY_NAME[match["month"]]
                found.append(_safe_date(int(match["year"]), month, int(match["day"])))
    date = _only(found)
    if date is None or not 1900 <= date.year <= 2100:
        return None
    return date


def _read_cjk_birth_date(match: re.Match[str]) -> datetime.date | None:
    year = _year_value(match["year"])
    month = _int_or_chinese(match["month"])
    day = _int_or_chinese(match["day"])
    if year is None or month is None or day is None:
        return None
    return _safe_date(year, month, day)


# --- Day parts and times ----------------------------------------------------------------


class DayPart(enum.Enum):
    MORNING = "morning"
    AFTERNOON = "afternoon"


# Strong words name a day part outright. "mañana" alone is weak: it is also "tomorrow",
# so "mañana por la tarde" is an afternoon. Filled by use_words.
_STRONG_DAY_PART_WORDS: dict[str, str] = {}
_AM_AFTER_DIGIT = re.compile(rf"\d\s*am{_NOT_LETTER_AFTER}")


def parse_day_part(text: str) -> DayPart | None:
    """Morning or afternoon: "morning", "am", "上午", "por la mañana", "pm", "下午",
    "por la tarde". Both named at once gives None."""
    folded = _fold(text)
    strong = {
        DayPart(part)
        for word, part in _STRONG_DAY_PART_WORDS.items()
        if _phrase_spans(folded, word)
    }
    if _AM_AFTER_DIGIT.search(folded):
        strong.add(DayPart.MORNING)
    if strong:
        return _only(strong)
    # "am" alone is a day part, but "I am free" is not.
    if folded == "am" or _phrase_spans(folded, "manana"):
        return DayPart.MORNING
    return None


@dataclass(frozen=True)
class _ClockReading:
    """One time written in a message, before am/pm is applied."""

    hour: int
    minute: int
    part: DayPart | None = None


# Hour words ("nine", "las diez", "la una"), and the patterns that read them: built from
# the number words by use_words.
_HOUR_WORDS: dict[str, int] = {}
_MERIDIEM_SUFFIX = rf"(?:\s*(?P<part>[ap])\.?\s?m{_NOT_LETTER_AFTER}\.?)?"
_HOUR_WORD_AFTER_ARTICLE = _HOUR_WORD_BEFORE_MARK = _MINUTE_WORD_AFTER_Y = re.compile(r"(?!x)x")
_CHINESE_CLOCK = re.compile(
    rf"(?P<hour>\d{{1,2}}|{_CN_NUMERAL}{{1,3}})\s*(?:点|點|时|時)(?:钟|鐘)?\s*"
    rf"(?:(?P<half>半)|(?P<quarter>一刻)|(?P<three_quarters>三刻)"
    rf"|(?P<minute>\d{{1,2}}|{_CN_NUMERAL}{{1,3}})(?!\d)\s*分?)?"
)
# "有一点", "早一点": "a little", not one o'clock.
_CHINESE_A_LITTLE_BEFORE = frozenset("早晚快慢好多有差")
_HOUR_MINUTE = re.compile(
    rf"(?<![\d:./\-])(?P<hour>\d{{1,2}})(?:[:.h]|\s?:\s?)(?P<minute>\d{{2}})(?!\d)(?![:./\-]\d)"
    rf"{_MERIDIEM_SUFFIX}"
)
# "10 y media", "10 y cuarto", "10 y 20", "10 menos cuarto"
_SPANISH_PAST_HOUR = re.compile(
    rf"(?<![\d:./\-])(?P<hour>\d{{1,2}})\s+(?P<way>y|menos)\s+(?P<minute>media|cuarto|\d{{1,2}})"
    rf"(?!\d){_NOT_LETTER_AFTER}"
)
_BARE_HOUR = re.compile(
    r"(?<![\d:./\-,])(?P<hour>\d{1,2})(?!\d)(?![:./\-,]\d)"
    rf"(?:\s*(?P<part>[ap])\.?\s?m{_NOT_LETTER_AFTER}\.?|\s*oclock|\s*h{_NOT_LETTER_AFTER})?"
)
_NOON_WORDS: tuple[str, ...] = ()  # filled by use_words
_DAY_PART_PHRASES: dict[str, str] = {}  # filled by use_words


def _words_to_hour_digits(folded: str) -> str:
    def to_digits(match: re.Match[str]) -> str:
        lead = match.groupdict().get("lead")
        if lead == "at" and match["word"] == "once":
            return match[0]  # English "at once", not Spanish eleven
        digits = str(_HOUR_WORDS.get(match["word"], 25))  # 25: veinticinco as minutes
        return f"{lead} {digits}" if lead else digits

    folded = _HOUR_WORD_AFTER_ARTICLE.sub(to_digits, folded)
    folded = _MINUTE_WORD_AFTER_Y.sub(to_digits, folded)
    return _HOUR_WORD_BEFORE_MARK.sub(to_digits, folded)


def _meridiem(match: re.Match[str]) -> DayPart | None:
    part = match.groupdict().get("part")
    if part is None:
        return None
    return DayPart.MORNING if part == "a" else DayPart.AFTERNOON


def _chinese_clock_readings(folded: str) -> tuple[str, list[_ClockReading | None]]:
    readings: list[_ClockReading | None] = []
    for match in list(_CHINESE_CLOCK.finditer(folded)):
        if match["hour"] == "一" and match.start() and folded[match.start() - 1] in _CHINESE_A_LITTLE_BEFORE:
            continue
        hour = _int_or_chinese(match["hour"])
        if match["half"]:
            minute: int | None = 30
        elif match["quarter"]:
            minute = 15
        elif match["three_quarters"]:
            minute = 45
        elif match["minute"]:
            minute = _int_or_chinese(match["minute"])
        else:
            minute = 0
        readings.append(None if hour is None or minute is None else _ClockReading(hour, minute))
        folded = _blank(folded, match.span())
    return folded, readings


def _spanish_readings(folded: str) -> tuple[str, list[_ClockReading | None]]:
    readings: list[_ClockReading | None] = []
    for match in list(_SPANISH_PAST_HOUR.finditer(folded)):
        hour = int(match["hour"])
        minutes = {"media": 30, "cuarto": 15}.get(match["minute"]) or int(match["minute"])
        if match["way"] == "menos":
            hour, minutes = hour - 1, 60 - minutes
        readings.append(_ClockReading(hour, minutes) if 0 < minutes < 60 else None)
        folded = _blank(folded, match.span())
    return folded, readings


def _digit_readings(folded: str) -> tuple[str, list[_ClockReading | None]]:
    readings: list[_ClockReading | None] = []
    for pattern in (_HOUR_MINUTE, _BARE_HOUR):
        for match in list(pattern.finditer(folded)):
            minute = int(match["minute"]) if "minute" in match.groupdict() else 0
            readings.append(_ClockReading(int(match["hour"]), minute, _meridiem(match)))
            folded = _blank(folded, match.span())
    return folded, readings


def _stated_day_part(folded: str) -> DayPart | None | bool:
    """The day part a message states in words; False when it states both."""
    parts = {
        DayPart(part)
        for phrase, part in _DAY_PART_PHRASES.items()
        if _phrase_spans(folded, phrase)
    }
    if len(parts) > 1:
        return False
    return parts.pop() if parts else None


def _on_clock(reading: _ClockReading, stated: DayPart | None) -> datetime.time | None:
    part = reading.part or stated
    if reading.part and stated and reading.part is not stated:
        return None
    hour, minute = reading.hour, reading.minute
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if part is DayPart.MORNING:
        if hour > 12:
            return None
        hour = 0 if hour == 12 else hour
    elif part is DayPart.AFTERNOON:
        if hour == 0:
            return None
        hour = hour + 12 if hour < 12 else hour
    return datetime.time(hour, minute)


def parse_time(text: str) -> datetime.time | None:
    """A clock time: "9", "9:30", "9.30", "9am", "2pm", "14:00", "9点半", "下午2点",
    "a las 10:30", "10 y media". Hours 0-23, minutes 0-59; two different times give
    None. A bare "2" is 02:00: whether that means 14:00 is the engine's call."""
    folded = _fold(text)
    if not folded:
        return None
    stated = _stated_day_part(folded)
    if stated is False:
        return None
    folded = _words_to_hour_digits(folded)
    readings: list[_ClockReading | None] = []
    for find in (_chinese_clock_readings, _spanish_readings, _digit_readings):
        folded, found = find(folded)
        readings += found
    if not readings and any(_phrase_spans(folded, word) for word in _NOON_WORDS):
        readings.append(_ClockReading(12, 0))
    times = [None if reading is None else _on_clock(reading, stated) for reading in readings]
    return _only(times)


# --- ID numbers -------------------------------------------------------------------------

_ID_TOKEN = re.compile(r"[0-9A-Z*]+")
_ID_JOINER = re.compile(r"[\s\-.\u00b7\u2010-\u2015\u2212]*")
_ID_SHAPE = re.compile(r"[0-9A-Z]{6,30}")


def _id_chains(text: str) -> Iterator[str]:
    """Runs of digit-bearing tokens joined only by spaces, hyphens or dots
    ("1101 0519-4912.3100 2X"). A lone trailing "X" (or keypad "*") joins its run."""
    chain: list[str] = []
    previous_end = None
    for match in _ID_TOKEN.finditer(text):
        token = match[0]
        joined = previous_end is not None and _ID_JOINER.fullmatch(text, previous_end, match.start())
        is_check_letter = token in ("X", "*") and bool(chain) and joined
        if any(ch.isdigit() for ch in token) and (joined or not chain):
            chain.append(token)
        elif is_check_letter:
            chain.append(token)
            yield "".join(chain)
            chain = []
        else:
            if chain:
                yield "".join(chain)
            chain = [token] if any(ch.isdigit() for ch in token) else []
        previous_end = match.end()
    if chain:
        yield "".join(chain)


def _compact_id(chain: str) -> str | None:
    if chain.endswith("*"):
        chain = chain[:-1] + "X"  # the phone keypad has no X
    if _ID_SHAPE.fullmatch(chain) and any(ch.isdigit() for ch in chain):
        return chain
    return None


def parse_id_number(text: str) -> str | None:
    """An ID-number candidate from free text, compact and uppercase:
    "1101 0519-4912 3100 2x" -> "11010519491231002X"; keypad "...002*" ends in X.
    6-30 characters of [0-9A-Z] with at least one digit; two candidates give None.
    No checksum here: the backend validates."""
    candidates = {_compact_id(chain) for chain in _id_chains(_clean(text).upper())}
    candidates.discard(None)
    return _only(candidates)  # type: ignore[return-value]


# --- Options ----------------------------------------------------------------------------


def _is_number_key(key: str, number: int) -> bool:
    folded = _fold(key)
    return folded.isdecimal() and len(folded) <= 3 and int(folded) == number


def _outermost_keys(spans: list[tuple[int, int, str]]) -> set[str]:
    """Keys of matches not inside a longer match: in "我要挂心内科", "心内科"
    (cardiology) hides "内科" (internal medicine)."""
    keys: set[str] = set()
    furthest_end = -1
    # By start, longest first: a span lies inside a longer one iff an earlier span
    # (in this order) reaches at least as far. Identical spans stand together.
    ordered = sorted(set(spans), key=lambda span: (span[0], -span[1]))
    for (_, end), same in itertools.groupby(ordered, key=lambda span: span[:2]):
        if furthest_end < end:
            keys.update(key for _, _, key in same)
        furthest_end = max(furthest_end, end)
    return keys


def _is_worth_a_prefix_match(folded: str) -> bool:
    if _is_unspaced(folded):
        return sum(_is_unspaced_char(ch) for ch in folded) >= 2
    return sum(ch.isalpha() for ch in folded) >= 3


def _prefix_keys(folded: str, options: Sequence[tuple[str, Sequence[str]]]) -> set[str]:
    """Options whose label starts a word with the message: "cardio" -> "Cardiology",
    "心内" -> "心内科"."""
    if not _is_worth_a_prefix_match(folded):
        return set()
    keys = set()
    for key, labels in options:
        for label in labels:
            folded_label = _fold(label)
            start = folded_label.find(folded)
            while start >= 0:
                if _is_unspaced(folded) or start == 0 or not _is_spaced_letter(folded_label[start - 1]):
                    keys.add(key)
                    break
                start = folded_label.find(folded, start + 1)
    return keys


# Words that may stand around a chosen number without making it part of a sentence:
# "option 2", "number two please", "the second one", "我选三", "第二个", "la dos".
_CHOICE_FILLERS: frozenset[str] = frozenset()  # filled by use_words
# Characters of an unspaced script (Chinese) that may stand around a chosen number:
# single-character choice fillers. Filled by use_words.
_CHOICE_FILLER_CHARS: frozenset[str] = frozenset()
# A sign, a range, a fraction or a decimal around digits: not a menu number.
_SIGNED_OR_RANGE = re.compile(r"(?:^|[^\w])[-+\u2212\u2013\u2014]\s*\d|\d\s*[-\u2013\u2014~/.,]\s*\d")


def _is_bare_choice(folded: str) -> bool:
    """Whether a message (with any option label blanked) is only a number and the
    words people put around one: the number is then a choice. In a sentence ("I need 2
    appointments for my heart") it never is."""
    tokens = _TOKEN.findall(folded)
    numbers = 0
    for index, token in enumerate(tokens):
        previous = tokens[index - 1] if index else ""
        if token.isdecimal() or _DIGIT_ORDINAL.fullmatch(token):
            numbers += 1
        elif token == "one" and (previous in _ONE_IS_PRONOUN_AFTER or _DIGIT_ORDINAL.fullmatch(previous)):
            continue
        elif token in _NUMBER_WORDS:
            numbers += 1
        elif token in _CHOICE_FILLERS:
            continue
        elif _is_unspaced(token):
            rest = "".join(ch for ch in token if ch not in _CHOICE_FILLER_CHARS)
            if rest and not _CN_NUMERAL_RUN.fullmatch(rest):
                return False
            numbers += bool(rest)
        else:
            return False
    return numbers >= 1


def parse_choice(text: str) -> int | None:
    """A menu number, when the message is a number and nothing more: "2", "option 2",
    "the second one", "第二个", "la dos". Never a number inside a sentence, a signed
    number ("-1"), a range ("1-2"), a decimal ("1.5") or an ID."""
    if _SIGNED_OR_RANGE.search(unicodedata.normalize("NFKC", _clean(text or ""))):
        return None
    if not _is_bare_choice(_fold(text)):
        return None
    return parse_number(text)


def match_label(text: str, options: Sequence[tuple[str, Sequence[str]]]) -> str | None:
    """The key of the one option whose whole label (or synonym) the message holds:
    a tapped button, "1 Wed, Dec 2 8:00 AM". No numbers, no prefixes."""
    folded = _fold(text)
    spans = [(start, end, key) for key, labels in options for label in labels
             for start, end in _phrase_spans(folded, _fold(label))]
    return _only(_outermost_keys(spans))  # type: ignore[return-value]


def match_option(text: str, options: Sequence[tuple[str, Sequence[str]]]) -> str | None:
    """The key of the one option a message picks: the key itself ("2"), a number for
    it on its own ("two", "option 2", "第二个"; see parse_choice), or one option's label
    or synonym anywhere in the message (case- and accent-insensitive; Chinese as a
    substring). A number and a label that disagree, or two labels, give None. If
    nothing matches, a message of 3+ letters (2+ Chinese characters) that begins a word
    in exactly one label picks it."""
    folded = _fold(text)
    if not folded:
        return None
    signed = _SIGNED_OR_RANGE.search(unicodedata.normalize("NFKC", _clean(text))) is not None
    if not signed:
        for key, _ in options:
            if folded == _fold(key):
                return key
    spans = [(start, end, key) for key, labels in options for label in labels
             for start, end in _phrase_spans(folded, _fold(label))]
    keys = _outermost_keys(spans)
    rest = folded
    for start, end, _ in spans:
        rest = _blank(rest, (start, end))
    number = parse_choice(rest) if rest.strip() and not signed else None
    if number is not None:
        keys.update(key for key, _ in options if _is_number_key(key, number))
    if not keys:
        keys = _prefix_keys(folded, options)
    return _only(keys)  # type: ignore[return-value]


# --- Finding one of many options by what people call it ------------------------------------

FUZZY_WORD = 0.8  # how alike a typed word must be to a known one ("cardiolgy" ~ "cardiology")
_MIN_FUZZY_LENGTH = 5  # shorter words differ too easily by one letter ("eyes" / "ears")


@dataclass(frozen=True)
class Ranked:
    """How a message points at options: `sure` when exactly one option's word is in it
    as written, else `candidates` (best first) from words alike or begun."""

    sure: str | None
    candidates: tuple[str, ...] = ()


def rank_options(text: str, options: Sequence[tuple[str, Sequence[str]]], *, limit: int = 5) -> Ranked:
    """Which option a message names among many (a hospital's departments): a name or
    synonym anywhere in it, case-, width- and accent-insensitive (a longer phrase hides a
    shorter one inside it); failing that, words spelled nearly alike ("dermatolgy") or a
    name begun ("cardio"). Numbers in the message never count."""
    folded = _fold(text)
    if not folded:
        return Ranked(None)
    spans = [(start, end, key) for key, labels in options for label in labels
             for start, end in _phrase_spans(folded, _fold(label))]
    exact = _outermost_keys(spans)
    if len(exact) == 1:
        key = next(iter(exact))
        if _says_little_else(folded, [(a, b) for a, b, k in spans if k == key]):
            return Ranked(key)
        # A sentence that names one department among much else ("our 2 year old needs an
        # operation for a hernia") may mean another: ask, never guess.
        return Ranked(None, (key,))
    if exact:
        length = {key: 0 for key in exact}
        for start, end, key in spans:
            if key in exact:
                length[key] = max(length[key], end - start)
        return Ranked(None, tuple(sorted(exact, key=lambda k: -length[k]))[:limit])
    alike = _alike_keys(folded, options)
    if alike:
        ordered = tuple(key for key, _ in sorted(alike.items(), key=lambda item: -item[1]))
        best = alike[ordered[0]]
        if len(ordered) == 1 or alike[ordered[1]] < best - 0.08:
            if best >= 0.88:
                return Ranked(ordered[0])
        return Ranked(None, ordered[:limit])
    begun = sorted(_prefix_keys(folded, options))
    if len(begun) == 1:
        return Ranked(begun[0])
    return Ranked(None, tuple(begun[:limit]))


# Words that say nothing about which department: "I need", "please", "for my mum".
_MENTION_FILLERS: frozenset[str] = frozenset()  # filled by use_words
_MENTION_FILLER_CHARS: frozenset[str] = frozenset()  # the same for mentions; use_words


def _says_little_else(folded: str, spans: list[tuple[int, int]]) -> bool:
    """Whether, besides the matched words, a message holds at most three other words (or
    six Chinese characters) that could name something else."""
    rest = folded
    for span in spans:
        rest = _blank(rest, span)
    others = 0
    for token in _TOKEN.findall(rest):
        if token.isdecimal() or token in _MENTION_FILLERS:
            continue
        if _is_unspaced(token):
            others += sum(1 for ch in token if ch not in _MENTION_FILLER_CHARS) / 2
        else:
            others += 1
    return others <= 3


def _alike_keys(folded: str, options: Sequence[tuple[str, Sequence[str]]]) -> dict[str, float]:
    """Options with a word (or run of words) spelled nearly like one in the message."""
    words = [w for w in _TOKEN.findall(folded) if not w.isdecimal() and not _is_unspaced(w)]
    chinese = "".join(w for w in _TOKEN.findall(folded) if _is_unspaced(w))
    found: dict[str, float] = {}
    for key, labels in options:
        for label in labels:
            label_words = _TOKEN.findall(_fold(label))
            if not label_words:
                continue
            if any(_is_unspaced(w) for w in label_words):
                ratio = _alike_chinese(chinese, "".join(label_words))
                if ratio > found.get(key, 0.0):
                    found[key] = ratio
                continue
            size = len(label_words)
            wanted = " ".join(label_words)
            if len(wanted) < _MIN_FUZZY_LENGTH:
                continue
            for start in range(len(words) - size + 1):
                typed = " ".join(words[start:start + size])
                if abs(len(typed) - len(wanted)) > 2 or typed[:1] != wanted[:1]:
                    continue
                ratio = difflib.SequenceMatcher(None, typed, wanted).ratio()
                if ratio >= FUZZY_WORD and ratio > found.get(key, 0.0):
                    found[key] = ratio
    return found


def _alike_chinese(text: str, name: str) -> float:
    """A Chinese name of four or more characters typed with one character wrong or
    swapped for a homophone ("耳鼻候科" for "耳鼻喉科"): the best same-length run."""
    if len(name) < 4 or len(text) < len(name):
        return 0.0
    best = 0.0
    for start in range(len(text) - len(name) + 1):
        run = text[start:start + len(name)]
        same = sum(a == b for a, b in zip(run, name))
        if same >= len(name) - 1:
            best = max(best, same / len(name))
    return best if best >= 0.75 else 0.0


# --- The words, handed in at start-up ------------------------------------------------------

_WORDS = Words()


def use_words(words: Words) -> None:
    """Install the words every parser reads (see engine/words.py). Called once at
    start-up by whoever builds the app (assistant.bootstrap) or runs the tests; the
    tables and the patterns made from them are rebuilt here, never read from a file."""
    global _WORDS, _GLOBAL_KEY_BY_WORD, _GREETINGS, _LANGUAGE_BY_NAME, _CARDINAL_WORDS
    global _ORDINAL_WORDS, _NUMBER_WORDS, _ONE_IS_PRONOUN_AFTER, _ANSWER_BY_PHRASE
    global _ANSWER_PHRASES, _MONTH_BY_NAME, _DAY_MONTH_NAME, _MONTH_NAME_DAY, _WEEKDAY_BY_NAME
    global _RELATIVE_DAYS, _STRONG_DAY_PART_WORDS, _HOUR_WORDS, _HOUR_WORD_AFTER_ARTICLE
    global _HOUR_WORD_BEFORE_MARK, _MINUTE_WORD_AFTER_Y, _NOON_WORDS, _DAY_PART_PHRASES
    global _CHOICE_FILLERS, _MENTION_FILLERS, _CHOICE_FILLER_CHARS, _MENTION_FILLER_CHARS
    _WORDS = words
    _GLOBAL_KEY_BY_WORD = {_fold(word): GlobalKey(key)
                           for key, group in words.table("global_keys").items() for word in group
                           if key in GlobalKey._value2member_map_ and _fold(word) != "cancel"}
    _GREETINGS = frozenset(_fold(word) for word in words.list("greetings"))
    _LANGUAGE_BY_NAME = _folded_table(words.table("language_names"))
    _CARDINAL_WORDS = _folded_table(words.table("cardinals"))
    _ORDINAL_WORDS = _folded_table(words.table("ordinals"))
    _NUMBER_WORDS = {word: int(value) for word, value in {**_CARDINAL_WORDS, **_ORDINAL_WORDS}.items()}
    _ONE_IS_PRONOUN_AFTER = _ONE_IS_PRONOUN_BEFORE_ORDINALS | set(_ORDINAL_WORDS)
    _ANSWER_BY_PHRASE = _folded_table({"yes": words.list("yes"), "no": words.list("no")})
    _ANSWER_PHRASES = sorted(_ANSWER_BY_PHRASE, key=len, reverse=True)
    _MONTH_BY_NAME = {name: int(month) for month, names in words.table("months").items()
                      for name in (_fold(n) for n in names)}
    month_name = "|".join(sorted(map(re.escape, _MONTH_BY_NAME), key=len, reverse=True)) or "(?!x)x"
    _DAY_MONTH_NAME = re.compile(
        rf"(?<!\w){_DAY_NUMBER}\s+(?:de\s+|of\s+)?(?P<month>{month_name})\.?"
        rf"(?:,?\s+(?:de\s+|del\s+)?{_YEAR_NUMBER}(?!\d))?{_NOT_LETTER_AFTER}")
    _MONTH_NAME_DAY = re.compile(
        rf"{_NOT_LETTER_BEFORE}(?P<month>{month_name})\.?\s+(?:the\s+)?{_DAY_NUMBER}(?!\d)"
        rf"(?:,?\s+{_YEAR_NUMBER}(?!\d))?(?!\w)")
    _WEEKDAY_BY_NAME = _folded_table(words.table("weekdays"))
    _RELATIVE_DAYS = sorted(_folded_table(words.table("relative_days")).items(),
                            key=lambda item: len(item[0]), reverse=True)
    _STRONG_DAY_PART_WORDS = _folded_table(words.table("strong_day_parts"))
    # "la una" is one o'clock: the Spanish feminine "one" that only an hour takes.
    _HOUR_WORDS = {**{w: int(v) for w, v in _CARDINAL_WORDS.items() if int(v) <= 23}, "una": 1}
    hour_word = "|".join(sorted(map(re.escape, _HOUR_WORDS), key=len, reverse=True))
    # "las diez" -> "las 10", "nine o'clock" -> "9 oclock": words become digits only where
    # they can only be an hour.
    _HOUR_WORD_AFTER_ARTICLE = re.compile(
        rf"{_NOT_LETTER_BEFORE}(?P<lead>a las|las|a la|la|at)\s+(?P<word>{hour_word}){_NOT_LETTER_AFTER}")
    _HOUR_WORD_BEFORE_MARK = re.compile(
        rf"{_NOT_LETTER_BEFORE}(?P<word>{hour_word})(?=\s*(?:oclock|[ap]\.?\s?m{_NOT_LETTER_AFTER}))")
    _MINUTE_WORD_AFTER_Y = re.compile(
        rf"{_NOT_LETTER_BEFORE}(?P<lead>y|menos)\s+(?P<word>{hour_word}|veinticinco){_NOT_LETTER_AFTER}")
    _NOON_WORDS = tuple(words.list("noon"))
    _DAY_PART_PHRASES = _folded_table(words.table("day_part_phrases"))
    _CHOICE_FILLERS = frozenset(_fold(word) for word in words.list("choice_fillers"))
    _MENTION_FILLERS = frozenset(_fold(word) for word in words.list("mention_fillers"))
    _CHOICE_FILLER_CHARS = frozenset(w for w in _CHOICE_FILLERS if len(w) == 1 and _is_unspaced(w))
    _MENTION_FILLER_CHARS = frozenset(w for w in _MENTION_FILLERS if len(w) == 1 and _is_unspaced(w))


def option_words(name: str) -> list[str]:
    """The words for one of the assistant's own menu options ("who_me": "for me", "我自己",
    "para mí"), from every language."""
    return list(_WORDS.table("options").get(name, ()))


def language_markers() -> dict[str, tuple[str, ...]]:
    """Per language, words that show a message is written in it."""
    return dict(_WORDS.markers)
