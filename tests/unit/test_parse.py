"""Tests for assistant.engine.parse: table-driven per function and language, plus a
Hypothesis fuzz that every public parser returns its type or None and never raises."""

from __future__ import annotations

import ast
import datetime as dt
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.engine import parse
from assistant.engine.parse import (
    DayPart,
    GlobalKey,
    match_option,
    normalise,
    parse_birth_date,
    parse_date,
    parse_day_part,
    parse_global_key,
    parse_id_number,
    parse_language,
    parse_number,
    parse_time,
    parse_yes_no,
)

TODAY = dt.date(2026, 11, 26)  # a Thursday
assert TODAY.weekday() == 3


def d(month: int, day: int, year: int = 2026) -> dt.date:
    return dt.date(year, month, day)


# --- normalise --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  YES  ", "yes"),
        ("ＹＥＳ", "yes"),
        ("０１２", "012"),
        ("ok!!", "ok"),
        ("¿Sí?", "sí"),
        ("“menu”", "menu"),
        ("是的。", "是的"),
        ("hello,   world", "hello, world"),
        ("line\nbreak\ttab", "line break tab"),
        ("\u200fyes\u200e", "yes"),  # bidi marks
        ("y\u200de\u0007s", "yes"),  # zero-width joiner and BEL
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),  # casefold, not lower
        ("", ""),
        ("!!!", ""),
    ],
)
def test_normalise_folds_width_case_space_and_edges(text, expected):
    assert normalise(text) == expected


def test_normalise_keeps_inner_punctuation():
    assert normalise("a.m.") == "a.m"


def test_normalise_caps_huge_input():
    assert normalise("a" * 10_000) == "a" * parse.MAX_INPUT_CHARS


def test_normalise_drops_lone_surrogates():
    assert normalise("ye\ud800s") == "yes"


# --- global keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", GlobalKey.HUMAN),
        ("０", GlobalKey.HUMAN),
        (" 0 ", GlobalKey.HUMAN),
        ("0.", GlobalKey.HUMAN),
        ("9", GlobalKey.REPEAT),
        ("*", GlobalKey.BACK),
        ("＊", GlobalKey.BACK),
        ("help", GlobalKey.HELP),
        ("HELP", GlobalKey.HELP),
        ("Help!", GlobalKey.HELP),
        ("帮助", GlobalKey.HELP),
        ("ayuda", GlobalKey.HELP),
        ("menu", GlobalKey.MENU),
        ("菜单", GlobalKey.MENU),
        ("主菜单", GlobalKey.MENU),
        ("menú", GlobalKey.MENU),
        ("MENU", GlobalKey.MENU),
        ("agent", GlobalKey.HUMAN),
        ("operator", GlobalKey.HUMAN),
        ("person", GlobalKey.HUMAN),
        ("人工", GlobalKey.HUMAN),
        ("客服", GlobalKey.HUMAN),
        ("persona", GlobalKey.HUMAN),
        ("operador", GlobalKey.HUMAN),
        ("repeat", GlobalKey.REPEAT),
        ("重复", GlobalKey.REPEAT),
        ("repetir", GlobalKey.REPEAT),
        ("back", GlobalKey.BACK),
        ("返回", GlobalKey.BACK),
        ("atrás", GlobalKey.BACK),
        ("atras", GlobalKey.BACK),
        ("volver", GlobalKey.BACK),
        ("STOP", GlobalKey.STOP),
        ("stop", GlobalKey.STOP),
        ("停止", GlobalKey.STOP),
        ("退订", GlobalKey.STOP),
        ("TD", GlobalKey.STOP),
        ("parar", GlobalKey.STOP),
        ("baja", GlobalKey.STOP),
        ("end", GlobalKey.STOP),
        ("QUIT", GlobalKey.STOP),
        ("unsubscribe", GlobalKey.STOP),
        ("stopall", GlobalKey.STOP),
        ("START", GlobalKey.START),
        ("开始", GlobalKey.START),
        ("empezar", GlobalKey.START),
        ("alta", GlobalKey.START),
        ("unstop", GlobalKey.START),
    ],
)
def test_global_key_is_recognised_in_every_language(text, expected):
    assert parse_global_key(text) is expected


@pytest.mark.parametrize("text", ["cancel", "CANCEL", "Cancel", "cancel.", " Cancel! ", "ｃａｎｃｅｌ"])
def test_plain_cancel_is_never_a_command(text):
    assert parse_global_key(text) is None
    assert parse_yes_no(text) is None
    assert parse_number(text) is None


@pytest.mark.parametrize(
    "text",
    ["00", "90", "0 please", "help me with my booking", "bus stop", "**", "1", "8", "#", "", "stopped"],
)
def test_global_key_needs_the_whole_message(text):
    assert parse_global_key(text) is None


# --- language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("English", "en"),
        ("english", "en"),
        ("英语", "en"),
        ("inglés", "en"),
        ("ingles", "en"),
        ("中文", "zh_Hans"),
        ("汉语", "zh_Hans"),
        ("普通话", "zh_Hans"),
        ("Chinese", "zh_Hans"),
        ("chino", "zh_Hans"),
        ("español", "es"),
        ("Español!", "es"),
        ("espanol", "es"),
        ("spanish", "es"),
        ("西班牙语", "es"),
        ("castellano", "es"),
        ("English.", "en"),
        ("中文。", "zh_Hans"),
    ],
)
def test_language_is_named_by_its_own_or_another_name(text, expected):
    assert parse_language(text) == expected


@pytest.mark.parametrize("text", ["", "en", "french", "english please", "I speak english", "1"])
def test_language_needs_the_whole_message(text):
    assert parse_language(text) is None


# --- numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 2),
        ("２", 2),
        ("2 please", 2),
        ("number 2", 2),
        ("option 2", 2),
        ("#2", 2),
        ("2#", 2),
        ("0", 0),
        ("12", 12),
        ("２０", 20),
        ("999", 999),
        ("2nd", 2),
        ("one", 1),
        ("two", 2),
        ("Three", 3),
        ("twenty", 20),
        ("first", 1),
        ("second", 2),
        ("the second one", 2),
        ("that one, the third", 3),
        ("一", 1),
        ("二", 2),
        ("两", 2),
        ("三", 3),
        ("十", 10),
        ("十二", 12),
        ("二十", 20),
        ("第二", 2),
        ("第二个", 2),
        ("我选三", 3),
        ("uno", 1),
        ("dos", 2),
        ("veinte", 20),
        ("dieciséis", 16),
        ("primero", 1),
        ("segundo", 2),
        ("la dos", 2),
        ("el tres", 3),
        ("2, two", 2),
    ],
)
def test_number_in_digits_or_words(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1 or 2",
        "一或者二",
        "uno o dos",
        "three or four",
        "三四个",  # "three or four"
        "1234",
        "0002",  # four digits, even with leading zeros, is an ID, not a choice
        "1101051949",
        "9:30",
        "2.5",
        "",
        "yes",
        "看一下",  # "have a look": no number
        "十分感谢",  # "thank you very much"
    ],
)
def test_number_refuses_two_numbers_ids_and_none(text):
    assert parse_number(text) is None


# --- yes / no ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "yes", "Y", "yeah", "yep", "ok", "OK!", "okay", "sure", "correct", "right",
        "confirm", "that's right", "that’s right", "yes please", "Yes, thank you",
        "no problem",
        "是", "是的", "好", "好的", "对", "对的", "确认", "可以", "行", "嗯", "是的，谢谢",
        "sí", "si", "Sí, por favor", "vale", "claro", "correcto", "de acuerdo",
        "está bien", "esta bien", "confirmar",
        "👍",
    ],
)
def test_yes_in_every_language(text):
    assert parse_yes_no(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "no", "No.", "n", "nope", "wrong", "not right", "no thanks",
        "不", "不是", "不对", "否", "不要", "错", "不不不",
        "no es", "No es correcto", "incorrecto",
        "👎",
    ],
)
def test_no_in_every_language(text):
    assert parse_yes_no(text) is False


@pytest.mark.parametrize(
    "text",
    ["1", "2", "", "yesterday", "nothing", "not sure", "maybe", "是不是", "对不起", "好像不对"],
)
def test_yes_no_refuses_digits_questions_and_lookalikes(text):
    assert parse_yes_no(text) is None


# --- dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", d(11, 26)),
        ("hoy", d(11, 26)),
        ("今天", d(11, 26)),
        ("tomorrow", d(11, 27)),
        ("Tomorrow please", d(11, 27)),
        ("mañana", d(11, 27)),
        ("manana", d(11, 27)),
        ("明天", d(11, 27)),
        ("明日", d(11, 27)),
        ("day after tomorrow", d(11, 28)),
        ("pasado mañana", d(11, 28)),
        ("后天", d(11, 28)),
        ("mañana por la mañana", d(11, 27)),
        ("mañana por la tarde", d(11, 27)),
    ],
)
def test_date_relative_words(text, expected):
    assert parse_date(text, TODAY, day_first=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("monday", d(11, 30)),
        ("Mon", d(11, 30)),
        ("next monday", d(11, 30)),
        ("wednesday", d(12, 2)),
        ("thursday", d(12, 3)),  # today is Thursday: strictly after today
        ("friday", d(11, 27)),
        ("周三", d(12, 2)),
        ("星期三", d(12, 2)),
        ("礼拜三", d(12, 2)),
        ("週三", d(12, 2)),
        ("周日", d(11, 29)),
        ("星期天", d(11, 29)),
        ("星期日", d(11, 29)),
        ("周四", d(12, 3)),
        ("el lunes", d(11, 30)),
        ("lunes", d(11, 30)),
        ("miércoles", d(12, 2)),
        ("miercoles", d(12, 2)),
        ("el próximo viernes", d(11, 27)),
        ("下周三", d(12, 2)),
    ],
)
def test_date_weekday_means_the_next_one_after_today(text, expected):
    assert parse_date(text, TODAY, day_first=True) == expected


@pytest.mark.parametrize(
    ("text", "day_first", "expected"),
    [
        ("3/12", True, d(12, 3)),
        ("3-12", True, d(12, 3)),
        ("3.12", True, d(12, 3)),
        ("3/12", False, d(3, 12, 2027)),
        ("12/3", False, d(12, 3)),
        ("12月3日", True, d(12, 3)),
        ("12月3号", False, d(12, 3)),
        ("十二月三日", True, d(12, 3)),
        ("3号", True, d(12, 3)),
        ("2026-12-03", False, d(12, 3)),
        ("2026/12/3", True, d(12, 3)),
        ("2026年12月3日", True, d(12, 3)),
        ("3/12/2026", True, d(12, 3)),
        ("12/3/2026", False, d(12, 3)),
        ("Dec 3", True, d(12, 3)),
        ("December 3rd", False, d(12, 3)),
        ("3 December", False, d(12, 3)),
        ("the 3rd of December", True, d(12, 3)),
        ("3 de diciembre", True, d(12, 3)),
        ("el 3 de diciembre", False, d(12, 3)),
        ("3 DE DICIEMBRE", True, d(12, 3)),
        ("on 3/12 please", True, d(12, 3)),
        ("thursday 3/12", True, d(12, 3)),  # the weekday agrees
    ],
)
def test_date_explicit_forms(text, day_first, expected):
    assert parse_date(text, TODAY, day_first=day_first) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1/1", d(1, 1, 2027)),
        ("Jan 5", d(1, 5, 2027)),
        ("1 de enero", d(1, 1, 2027)),
        ("1月1日", d(1, 1, 2027)),
        ("25 November", d(11, 25, 2027)),  # yesterday
        ("26 November", d(11, 26)),  # today has not passed
        ("1号", d(12, 1)),  # day of month already past: next month
    ],
)
def test_date_already_past_this_year_rolls_over(text, expected):
    assert parse_date(text, TODAY, day_first=True) == expected


@pytest.mark.parametrize(
    "text",
    [
        "por la mañana",  # "in the morning", not tomorrow
        "esta mañana",
        "31/2",
        "30/2",
        "2026-02-30",
        "31 de febrero",
        "3/12/26",  # two-digit year: refused, not guessed
        "friday 3/12",  # weekday disagrees with the date
        "tomorrow or monday",
        "3/12 or 4/12",
        "last monday",
        "el lunes pasado",
        "上周三",
        "3",
        "",
        "next week",
        "cancel",
    ],
)
def test_date_refuses_invalid_ambiguous_and_non_dates(text):
    assert parse_date(text, TODAY, day_first=True) is None


def test_date_next_week_in_chinese_is_the_calendar_week_after_this_one():
    monday = dt.date(2026, 11, 23)
    assert parse_date("周三", monday, day_first=True) == dt.date(2026, 11, 25)
    assert parse_date("下周三", monday, day_first=True) == dt.date(2026, 12, 2)
    assert parse_date("下个星期一", monday, day_first=True) == dt.date(2026, 11, 30)


def test_date_year_end_rolls_into_next_year():
    new_years_eve = dt.date(2026, 12, 31)
    assert parse_date("tomorrow", new_years_eve, day_first=True) == dt.date(2027, 1, 1)
    assert parse_date("monday", new_years_eve, day_first=True) == dt.date(2027, 1, 4)
    assert parse_date("2/1", new_years_eve, day_first=True) == dt.date(2027, 1, 2)


def test_date_feb_29_exists_only_in_leap_years():
    assert parse_date("29/2", dt.date(2027, 11, 26), day_first=True) == dt.date(2028, 2, 29)
    assert parse_date("29/2", dt.date(2026, 3, 1), day_first=True) is None


def test_date_at_the_end_of_the_calendar_is_none_not_an_error():
    assert parse_date("tomorrow", dt.date.max, day_first=True) is None
    assert parse_date("1/1", dt.date.max, day_first=False) is None


def test_date_accepts_a_datetime_as_today():
    now = dt.datetime(2026, 11, 26, 23, 59)
    assert parse_date("tomorrow", now, day_first=True) == dt.date(2026, 11, 27)


# --- day parts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("morning", DayPart.MORNING),
        ("in the morning", DayPart.MORNING),
        ("am", DayPart.MORNING),
        ("AM", DayPart.MORNING),
        ("a.m.", DayPart.MORNING),
        ("9am", DayPart.MORNING),
        ("上午", DayPart.MORNING),
        ("早上", DayPart.MORNING),
        ("早晨", DayPart.MORNING),
        ("mañana", DayPart.MORNING),
        ("por la mañana", DayPart.MORNING),
        ("afternoon", DayPart.AFTERNOON),
        ("pm", DayPart.AFTERNOON),
        ("p.m.", DayPart.AFTERNOON),
        ("2pm", DayPart.AFTERNOON),
        ("下午", DayPart.AFTERNOON),
        ("tarde", DayPart.AFTERNOON),
        ("por la tarde", DayPart.AFTERNOON),
        ("mañana por la tarde", DayPart.AFTERNOON),  # tomorrow afternoon
        ("tomorrow morning", DayPart.MORNING),
    ],
)
def test_day_part_in_every_language(text, expected):
    assert parse_day_part(text) is expected


@pytest.mark.parametrize(
    "text", ["", "evening", "9:30", "I am not sure", "morning or afternoon", "上午还是下午", "yes"]
)
def test_day_part_refuses_both_or_neither(text):
    assert parse_day_part(text) is None


# --- times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9", dt.time(9, 0)),
        ("9:30", dt.time(9, 30)),
        ("9.30", dt.time(9, 30)),
        ("09:30", dt.time(9, 30)),
        ("９:３０", dt.time(9, 30)),
        ("9am", dt.time(9, 0)),
        ("9 a.m.", dt.time(9, 0)),
        ("2pm", dt.time(14, 0)),
        ("2:30 PM", dt.time(14, 30)),
        ("12pm", dt.time(12, 0)),
        ("12am", dt.time(0, 0)),
        ("14:00", dt.time(14, 0)),
        ("0:15", dt.time(0, 15)),
        ("at 9:30 please", dt.time(9, 30)),
        ("nine o'clock", dt.time(9, 0)),
        ("noon", dt.time(12, 0)),
        ("9点", dt.time(9, 0)),
        ("9点半", dt.time(9, 30)),
        ("九点半", dt.time(9, 30)),
        ("9点15分", dt.time(9, 15)),
        ("下午2点", dt.time(14, 0)),
        ("下午两点半", dt.time(14, 30)),
        ("上午9点半", dt.time(9, 30)),
        ("下午2:30", dt.time(14, 30)),
        ("las 10", dt.time(10, 0)),
        ("a las 10:30", dt.time(10, 30)),
        ("10 y media", dt.time(10, 30)),
        ("las diez y media", dt.time(10, 30)),
        ("a las 10 y cuarto", dt.time(10, 15)),
        ("las 11 menos cuarto", dt.time(10, 45)),
        ("a la una", dt.time(1, 0)),
        ("las 3 de la tarde", dt.time(15, 0)),
        ("a las 9 de la mañana", dt.time(9, 0)),
        ("mañana a las 9", dt.time(9, 0)),
    ],
)
def test_time_in_every_form(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "24:00",
        "25",
        "9:60",
        "13am",
        "9 or 10",
        "9:30 or 10:30",
        "2pm in the morning",
        "上午2pm",
        "at once",
        "1430",
        "3/12",  # a date, not a time
        "morning",
        "yes",
    ],
)
def test_time_refuses_out_of_range_ambiguous_and_non_times(text):
    assert parse_time(text) is None


# --- ID numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("110105194912310021", "110105194912310021"),
        ("11010519491231002x", "11010519491231002X"),
        ("1101 0519 4912 3100 2X", "11010519491231002X"),
        ("110105-19491231-002X", "11010519491231002X"),
        ("110105.1949.1231.002 X", "11010519491231002X"),
        ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X"),
        ("11010519491231002*", "11010519491231002X"),  # keypad has no X
        ("11010519491231002*#", "11010519491231002X"),
        ("my ID is 110105194912310021, thanks", "110105194912310021"),
        ("身份证号110105194912310021", "110105194912310021"),
        ("E12345678", "E12345678"),
        ("123456", "123456"),
        ("1" * 30, "1" * 30),
    ],
)
def test_id_number_is_compacted_and_uppercased(text, expected):
    assert parse_id_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "12345",  # too short
        "1" * 31,  # too long
        "hello world",  # no digit
        "ABCDEFGH",
        "id 123456 or 654321",  # two candidates
        "1101*0519491231002",  # "*" only as the last character
        "yes",
    ],
)
def test_id_number_refuses_short_long_wordy_and_ambiguous(text):
    assert parse_id_number(text) is None


# --- birth dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day_first", "expected"),
    [
        ("1950-03-07", True, dt.date(1950, 3, 7)),
        ("1950/3/7", False, dt.date(1950, 3, 7)),
        ("1950.3.7", True, dt.date(1950, 3, 7)),
        ("19500307", True, dt.date(1950, 3, 7)),
        ("7/3/1950", True, dt.date(1950, 3, 7)),
        ("7/3/1950", False, dt.date(1950, 7, 3)),
        ("3/7/1950", False, dt.date(1950, 3, 7)),
        ("1950年3月7日", True, dt.date(1950, 3, 7)),
        ("一九五〇年三月七日", True, dt.date(1950, 3, 7)),
        ("7 de marzo de 1950", True, dt.date(1950, 3, 7)),
        ("March 7, 1950", False, dt.date(1950, 3, 7)),
        ("7 March 1950", True, dt.date(1950, 3, 7)),
        ("born on 7th March 1950", True, dt.date(1950, 3, 7)),
        ("2100-12-31", True, dt.date(2100, 12, 31)),
        ("1900-01-01", True, dt.date(1900, 1, 1)),
    ],
)
def test_birth_date_in_every_form(text, day_first, expected):
    assert parse_birth_date(text, day_first=day_first) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1899-12-31",
        "2101-01-01",
        "1950-02-30",
        "31/2/1950",
        "7 March",  # no year
        "7/3/50",  # two-digit year
        "1950-03-07 or 1951-03-07",
        "110105194912310021",  # an ID is not a birth date
    ],
)
def test_birth_date_refuses_out_of_range_invalid_and_yearless(text):
    assert parse_birth_date(text, day_first=True) is None


# --- options ----------------------------------------------------------------------------

DEPARTMENTS = [
    ("1", ["Cardiology", "心内科", "Cardiología"]),
    ("2", ["Internal medicine", "内科", "Medicina interna"]),
    ("3", ["Pediatrics", "儿科", "Pediatría"]),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", "2"),
        ("２", "2"),
        ("two", "2"),
        ("第二个", "2"),
        ("la dos", "2"),
        ("CARDIOLOGY", "1"),
        ("cardiology please", "1"),
        ("cardiologia", "1"),
        ("Cardiología", "1"),
        ("我要挂心内科", "1"),  # 心内科 hides the shorter 内科
        ("我要挂内科", "2"),
        ("internal medicine", "2"),
        ("medicina interna", "2"),
        ("pediatria please", "3"),
        ("1 cardiology", "1"),  # number and label agree
        ("cardio", "1"),  # a word-start of exactly one label
        ("心内", "1"),
    ],
)
def test_option_by_key_number_or_label(text, expected):
    assert match_option(text, DEPARTMENTS) == expected


def test_option_label_match_ignores_accents_both_ways():
    options = [("a", ["Corazón"]), ("b", ["Pies"])]
    assert match_option("corazon", options) == "a"
    assert match_option("CORAZÓN", [("a", ["corazon"]), ("b", ["pies"])]) == "a"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "4",
        "1 or 2",
        "2 cardiology",  # number and label disagree
        "cardiology or pediatrics",
        "内科还是儿科",
        "xyz",
        "ca",  # too short to be read as the start of a label
    ],
)
def test_option_refuses_ambiguous_and_unknown(text):
    assert match_option(text, DEPARTMENTS) is None


def test_option_word_start_in_two_labels_is_ambiguous():
    options = [("1", ["Neurology"]), ("2", ["Neurosurgery"])]
    assert match_option("neuro", options) is None
    assert match_option("neurosurg", options) == "2"


def test_option_shared_synonym_is_ambiguous():
    options = [("1", ["Dr Li", "morning"]), ("2", ["Dr Wang", "morning"])]
    assert match_option("morning", options) is None
    assert match_option("dr wang", options) == "2"


def test_option_non_numeric_key_is_matched_as_itself():
    options = [("self", ["for me", "为自己", "para mí"]), ("other", ["someone else", "为家人", "otra persona"])]
    assert match_option("SELF", options) == "self"
    assert match_option("para mi", options) == "self"
    assert match_option("为家人预约", options) == "other"
    assert match_option("1", options) is None  # no positional numbering here


def test_option_with_no_options_is_none():
    assert match_option("2", []) is None


# --- module rules -----------------------------------------------------------------------


def test_parse_imports_only_the_standard_library_and_its_words():
    tree = ast.parse(Path(parse.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
    assert imported, "the scan found no imports at all"
    outside = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}
    assert outside <= {"__future__", "assistant.engine.words"}


def test_parse_holds_no_word_tables():
    # The words live in locales/<code>/words.toml and are handed in at start-up; parse.py
    # keeps the rules (some of which name a grammar word, like Spanish "las" before an hour).
    tree = ast.parse(Path(parse.__file__).read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    constants = " ".join(node.value for node in ast.walk(tree)
                         if isinstance(node, ast.Constant) and isinstance(node.value, str)
                         and id(node) not in docstrings)
    for word in ("tomorrow", "明天", "january", "enero", "hola", "你好", "español", "是的", "vale",
                 "seventeen", "diecisiete", "wednesday", "miércoles", "operator", "人工"):
        assert word not in constants, word


def test_a_fourth_language_needs_only_its_words_file(tmp_path):
    from assistant.config import LOCALES_DIR
    from assistant.engine.words import Words
    from assistant.i18n.words import load_words

    shipped = load_words(LOCALES_DIR)
    french = {"yes": ["oui", "d'accord"], "no": ["non"], "greetings": ["bonjour"],
              "cardinals": {"2": ["deux"]}, "relative_days": {"1": ["demain"]},
              "language_names": {"fr": ["français"]}, "global_keys": {"help": ["aide"]}}
    try:
        parse.use_words(Words.from_languages({"shipped": _as_table(shipped), "fr": french}))
        assert parse.parse_yes_no("Oui") is True and parse.parse_yes_no("non") is False
        assert parse.is_greeting("Bonjour !") and parse.parse_number("deux") == 2
        assert parse.parse_date("demain", dt.date(2026, 12, 1), day_first=True) == dt.date(2026, 12, 2)
        assert parse.parse_language("Français") == "fr" and parse.parse_global_key("AIDE") is not None
        assert parse.parse_yes_no("sí") is True  # the shipped languages still work alongside
    finally:
        parse.use_words(shipped)


def _as_table(words) -> dict:
    return {**{name: list(values) for name, values in words.lists.items()},
            **{name: {key: list(group) for key, group in table.items()}
               for name, table in words.tables.items()}}


def test_no_word_table_maps_cancel():
    assert "cancel" not in parse._GLOBAL_KEY_BY_WORD
    assert all("cancel" not in word for word in parse._GLOBAL_KEY_BY_WORD)


# --- fuzz -------------------------------------------------------------------------------

_NASTY = [
    "\u202e", "\u200f", "\u200e", "\u2066", "\u200d", "\ufeff", "\x00", "\x07", "\x1b", "\r",
    "\ufe0f", "\U0001f3fb", "😀", "👍", "🇨🇳", "ש", "ب", "١", "٣", "０", "＊", "＃", "。", "，",
    "'; DROP TABLE bookings; --", "<script>", "%(x)s", "{x}", "1/2", "12月", "号", "点",
    "mañana", "por la", "de ", "pm", "a.m.", "第", "十", "一", "*", "#", "/", "-", ".", ":",
]
# Words the parsers know, so the fuzz also reaches the deep paths, not only "no match".
_VOCABULARY = [
    "0", "1", "2", "9", "12", "31", "99", "2026", "1950", "19500307", "/", "-", ".", ":",
    "年", "月", "日", "号", "点", "半", "周", "下周", "上周", "星期", "三", "十", "两", "第",
    "上午", "下午", "中午", "明天", "后天", "是", "不", "好", "内科", "心内科",
    "am", "pm", "a.m.", "yes", "no", "one", "second", "the", "tomorrow", "monday", "last",
    "dec", "december", "may", "of", "noon", "at", "oclock", "X", "*", "#",
    "mañana", "pasado", "la", "las", "por", "de", "y", "media", "menos", "cuarto", "una",
    "once", "dos", "lunes", "marzo", "sí", "cancel", "stop",
]
_LONE_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
_PIECES = st.one_of(st.characters(), _LONE_SURROGATES, st.sampled_from(_NASTY))
MESSAGES = st.one_of(
    st.text(),
    st.lists(st.sampled_from(_VOCABULARY), max_size=8).map(" ".join),
    st.lists(st.sampled_from(_VOCABULARY), max_size=8).map("".join),
    st.lists(_PIECES, max_size=40).map("".join),
    # Huge messages: a short piece repeated past the 1,000-character cap.
    st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=12), st.integers(100, 2000)),
)
OPTIONS = st.lists(
    st.tuples(st.text(max_size=5), st.lists(st.text(max_size=12), max_size=3)), max_size=4
)

fuzz_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
_ID_SHAPE = re.compile(r"[0-9A-Z]{6,30}")


@fuzz_settings
@given(text=MESSAGES, today=st.dates(), day_first=st.booleans(), options=OPTIONS)
def test_every_parser_returns_its_type_or_none_on_any_string(text, today, day_first, options):
    normalised = normalise(text)
    assert isinstance(normalised, str)
    assert normalised == normalised.strip()
    assert not any(ch in normalised for ch in "\x00\x07\u200f\u202e\ufeff")

    assert parse_global_key(text) is None or isinstance(parse_global_key(text), GlobalKey)
    assert parse_language(text) in (None, "en", "zh_Hans", "es")

    number = parse_number(text)
    assert number is None or (type(number) is int and 0 <= number <= 999)

    assert parse_yes_no(text) in (None, True, False)
    assert parse_day_part(text) is None or isinstance(parse_day_part(text), DayPart)

    time = parse_time(text)
    assert time is None or type(time) is dt.time

    date = parse_date(text, today, day_first=day_first)
    assert date is None or type(date) is dt.date

    birth = parse_birth_date(text, day_first=day_first)
    assert birth is None or (type(birth) is dt.date and 1900 <= birth.year <= 2100)

    id_number = parse_id_number(text)
    assert id_number is None or _ID_SHAPE.fullmatch(id_number)

    key = match_option(text, options)
    assert key is None or key in {option_key for option_key, _ in options}


@fuzz_settings
@given(text=MESSAGES, today=st.dates())
def test_relative_or_weekday_dates_are_never_in_the_past(text, today):
    # Yearless and relative dates look forward; only an explicit year may point back.
    found = parse_date(text, today, day_first=True)
    if found is not None and not re.search(r"\d{4}|[〇零一二三四五六七八九]{4}", normalise(text)):
        assert found >= today


@fuzz_settings
@given(number=st.integers(0, 999), filler=st.sampled_from(["", "#", "option ", "number ", "  "]))
def test_any_short_number_round_trips(number, filler):
    assert parse_number(f"{filler}{number}") == number


@fuzz_settings
@given(day=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)), day_first=st.booleans())
def test_any_birth_date_round_trips_in_numeric_forms(day, day_first):
    first, second = (day.day, day.month) if day_first else (day.month, day.day)
    assert parse_birth_date(day.isoformat(), day_first=day_first) == day
    assert parse_birth_date(day.strftime("%Y%m%d").zfill(8), day_first=day_first) == day
    assert parse_birth_date(f"{first}/{second}/{day.year}", day_first=day_first) == day


@fuzz_settings
@given(hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_any_clock_time_round_trips(hour, minute):
    assert parse_time(f"{hour}:{minute:02d}") == dt.time(hour, minute)
    assert parse_time(f"{hour}点{minute}分") == dt.time(hour, minute)
