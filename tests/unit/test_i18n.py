"""Locale negotiation, catalogs, placeholder checks and date/time formats."""

import gettext as stdlib_gettext
import os
import re
import shutil
import textwrap
from datetime import date, datetime, time, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel import Locale
from babel.support import Translations
from hypothesis import given
from hypothesis import strategies as st

from assistant.channels.sms_segments import count_segments
from assistant.i18n import (
    MALFORMED,
    Catalogs,
    babel_locale,
    catalog_problems,
    compile_catalogs,
    negotiate,
    placeholders,
    supported_locales,
)
from assistant.i18n.format import (
    format_date_long,
    format_date_short,
    format_date_spoken,
    format_time,
    format_time_spoken,
)

LOCALES = Path(__file__).resolve().parents[2] / "locales"
SHIPPED = ["en", "es", "zh_Hans"]

PLURALS = {
    "en": "nplurals=2; plural=(n != 1);",
    "es": "nplurals=2; plural=(n != 1);",
    "zh_Hans": "nplurals=1; plural=0;",
}


def write_po(locales: Path, lang: str, body: str, plural_forms: str | None = None) -> Path:
    """Write locales/<lang>/LC_MESSAGES/messages.po with a complete header."""
    path = locales / lang / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = textwrap.dedent(
        f"""\
        msgid ""
        msgstr ""
        "Content-Type: text/plain; charset=UTF-8\\n"
        "Language: {lang}\\n"
        "Plural-Forms: {plural_forms or PLURALS.get(lang, PLURALS['en'])}\\n"

        """
    )
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    """en, es and zh_Hans catalogs, compiled."""
    root = tmp_path / "locales"
    write_po(root, "en", """\
        msgid "Hello, {name}."
        msgstr "Hello, {name}."

        msgid "menu.main"
        msgstr "Main menu"

        msgid "One slot"
        msgid_plural "{n} slots"
        msgstr[0] "One slot"
        msgstr[1] "{n} slots"
        """)
    write_po(root, "es", """\
        msgid "Hello, {name}."
        msgstr "Hola, {name}."

        msgid "One slot"
        msgid_plural "{n} slots"
        msgstr[0] "Un hueco"
        msgstr[1] "{n} huecos"

        #, fuzzy
        msgid "Goodbye"
        msgstr "Adiós"
        """)
    write_po(root, "zh_Hans", """\
        msgid "Hello, {name}."
        msgstr "{name}，您好。"

        msgid "One slot"
        msgid_plural "{n} slots"
        msgstr[0] "{n}个号源"
        """)
    compile_catalogs(root)
    return root


# --- Negotiation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "catalog"),
    [
        ("zh", "zh_Hans"),
        ("zh-CN", "zh_Hans"),
        ("zh_CN", "zh_Hans"),
        ("zh-Hans", "zh_Hans"),
        ("zh_Hans", "zh_Hans"),
        ("zh_Hans_CN", "zh_Hans"),
        ("zh-SG", "zh_Hans"),
        ("ZH-cn", "zh_Hans"),
        ("zh-hans-cn", "zh_Hans"),
        ("cmn-Hans-CN", "zh_Hans"),
        ("zh_CN.UTF-8", "zh_Hans"),
        ("es-MX", "es"),
        ("es_419", "es"),
        ("es", "es"),
        ("ES", "es"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("en", "en"),
    ],
)
def test_negotiate_maps_tags_to_catalogs(tag, catalog):
    assert negotiate(tag, SHIPPED, default="en") == catalog


@pytest.mark.parametrize("tag", ["zh-TW", "zh-Hant", "zh_HK", "zh-Hant-TW", "zh_MO"])
def test_traditional_chinese_gets_simplified_only_without_a_hant_catalog(tag):
    assert negotiate(tag, SHIPPED, default="en") == "zh_Hans"
    assert negotiate(tag, SHIPPED + ["zh_Hant"], default="en") == "zh_Hant"


def test_simplified_chinese_never_goes_to_a_hant_catalog():
    assert negotiate("zh-CN", ["en", "zh_Hant", "zh_Hans"], default="en") == "zh_Hans"
    assert negotiate("zh", ["en", "zh_Hant", "zh_Hans"], default="en") == "zh_Hans"


@pytest.mark.parametrize(
    "tag",
    [None, "", "   ", "fr", "de-DE", "!!!", "12", "x-klingon", "klingon", "*", "en--", "zh_?",
     "\x00", "e" * 500, 42, b"zh"],
)
def test_unknown_or_garbage_tags_get_the_default(tag):
    assert negotiate(tag, SHIPPED, default="es") == "es"


def test_an_accept_language_list_is_tried_in_order_of_quality():
    assert negotiate("fr-CA,fr;q=0.9,es;q=0.8,en;q=0.5", SHIPPED, "en") == "es"
    assert negotiate("en;q=0.2, zh-CN", SHIPPED, "es") == "zh_Hans"
    assert negotiate("zh;q=0, fr", SHIPPED, "es") == "es"  # q=0 means "not this one"


def test_a_language_only_tag_reaches_a_regional_catalog():
    assert negotiate("es", ["en", "es_MX"], "en") == "es_MX"
    assert negotiate("zh-Hans", ["en", "zh_CN"], "en") == "zh_CN"
    assert negotiate("zh-TW", ["en", "zh_TW"], "en") == "zh_TW"


def test_negotiate_survives_bad_supported_lists():
    assert negotiate("es", None, "en") == "en"  # type: ignore[arg-type]
    assert negotiate("es", [None, 3, "es"], "en") == "es"  # type: ignore[list-item]
    assert negotiate("es", (name for name in ["es"]), "en") == "es"


@given(st.one_of(st.none(), st.text(), st.from_regex(r"[A-Za-z]{1,4}([-_][A-Za-z0-9]{1,8}){0,3}")))
def test_negotiate_always_returns_a_supported_catalog_or_the_default(tag):
    assert negotiate(tag, SHIPPED, default="en") in SHIPPED


# --- Catalog discovery, loading and the zh_Hans pitfall ---------------------------------


def test_supported_locales_lists_catalog_folders(tmp_path):
    write_po(tmp_path, "zh_Hans", "")
    write_po(tmp_path, "en", "")
    mo_only = tmp_path / "es" / "LC_MESSAGES"
    mo_only.mkdir(parents=True)
    (mo_only / "messages.mo").write_bytes(b"")
    (tmp_path / "fr").mkdir()  # a folder without a catalog is not a language
    (tmp_path / "messages.pot").write_text("")
    assert supported_locales(tmp_path) == ["en", "es", "zh_Hans"]


def test_supported_locales_of_a_missing_folder_is_empty(tmp_path):
    assert supported_locales(tmp_path / "nowhere") == []


def test_plain_gettext_lookup_misses_a_zh_hans_catalog_for_zh_cn(locales):
    # The pitfall: lookup by locale name silently falls back to the msgid.
    plain = stdlib_gettext.translation("messages", locales, languages=["zh_CN"], fallback=True)
    assert plain.gettext("Hello, {name}.") == "Hello, {name}."
    babel_lookup = Translations.load(locales, ["zh_CN"], domain="messages")
    assert babel_lookup.gettext("Hello, {name}.") == "Hello, {name}."


@pytest.mark.parametrize("tag", ["zh_CN", "zh-CN", "zh", "zh-Hans", "zh_Hans_CN", "zh-TW"])
def test_catalogs_map_chinese_tags_explicitly(locales, tag):
    assert Catalogs(locales).gettext(tag, "Hello, {name}.", name="王芳") == "王芳，您好。"


def test_gettext_translates_then_fills_placeholders(locales):
    catalogs = Catalogs(locales)
    assert catalogs.gettext("es", "Hello, {name}.", name="Ana") == "Hola, Ana."
    assert catalogs.gettext("en", "Hello, {name}.", name="Ann") == "Hello, Ann."


def test_a_missing_catalog_falls_back_to_the_msgid(tmp_path):
    write_po(tmp_path, "es", 'msgid "Hello, {name}."\nmsgstr "Hola, {name}."\n')
    compile_catalogs(tmp_path)
    catalogs = Catalogs(tmp_path, default="en")
    assert catalogs.gettext("fr", "Hello, {name}.", name="Ann") == "Hello, Ann."
    assert catalogs.gettext("en", "Hello, {name}.", name="Ann") == "Hello, Ann."


def test_an_unknown_locale_gets_the_default_catalog(locales):
    assert Catalogs(locales, default="es").gettext("fr", "Hello, {name}.", name="Ana") == "Hola, Ana."


def test_a_message_missing_from_a_catalog_falls_back_to_the_default_catalog(locales):
    assert Catalogs(locales).gettext("es", "menu.main") == "Main menu"
    assert Catalogs(locales).gettext("es", "never.written") == "never.written"


def test_fuzzy_entries_are_not_compiled(locales):
    assert Catalogs(locales).gettext("es", "Goodbye") == "Goodbye"


def test_missing_parameters_stay_visible_instead_of_raising(locales):
    assert Catalogs(locales).gettext("es", "Hello, {name}.") == "Hola, {name}."


@pytest.mark.parametrize("msgid", ["Press {0}", "Press {}", "Open {", "Close }", "{name.attr}", "{n:d}"])
def test_unfillable_messages_are_returned_as_written(locales, msgid):
    assert Catalogs(locales).gettext("en", msgid, n="x") == msgid


def test_ngettext_picks_the_plural_form_and_offers_n(locales):
    catalogs = Catalogs(locales)
    assert catalogs.ngettext("es", "One slot", "{n} slots", 1) == "Un hueco"
    assert catalogs.ngettext("es", "One slot", "{n} slots", 3) == "3 huecos"
    assert catalogs.ngettext("zh_CN", "One slot", "{n} slots", 1) == "1个号源"
    assert catalogs.ngettext("fr", "One slot", "{n} slots", 2) == "2 slots"
    assert catalogs.ngettext("es", "One slot", "{n} slots", "x") == "{n} slots".replace("{n}", "x")  # type: ignore[arg-type]


def test_catalogs_are_loaded_once(locales):
    catalogs = Catalogs(locales)
    for mo_path in locales.glob("*/LC_MESSAGES/*.mo"):
        mo_path.unlink()
    assert catalogs.locales == ["en", "es", "zh_Hans"]
    assert catalogs.gettext("es", "Hello, {name}.", name="Ana") == "Hola, Ana."


def test_a_corrupt_mo_is_skipped(locales):
    (locales / "es" / "LC_MESSAGES" / "messages.mo").write_bytes(b"not a catalog")
    catalogs = Catalogs(locales)
    assert catalogs.locales == ["en", "zh_Hans"]
    assert catalogs.gettext("es", "Hello, {name}.", name="Ana") == "Hello, Ana."


def test_a_catalog_without_mo_is_not_loaded(tmp_path):
    write_po(tmp_path, "es", 'msgid "Hello"\nmsgstr "Hola"\n')
    assert Catalogs(tmp_path).locales == []
    assert Catalogs(tmp_path).gettext("es", "Hello") == "Hello"


# --- Compiling --------------------------------------------------------------------------


def test_compile_writes_missing_mo_files_then_skips_fresh_ones(tmp_path):
    po_path = write_po(tmp_path, "es", 'msgid "Hello"\nmsgstr "Hola"\n')
    assert compile_catalogs(tmp_path) == [po_path.with_suffix(".mo")]
    assert compile_catalogs(tmp_path) == []
    assert sorted(path.name for path in po_path.parent.iterdir()) == ["messages.mo", "messages.po"]


def test_compile_rebuilds_a_mo_older_than_its_po(tmp_path):
    po_path = write_po(tmp_path, "es", 'msgid "Hello"\nmsgstr "Hola"\n')
    compile_catalogs(tmp_path)
    po_path.write_text(po_path.read_text(encoding="utf-8").replace("Hola", "Buenas"), encoding="utf-8")
    mo_path = po_path.with_suffix(".mo")
    old = mo_path.stat().st_mtime_ns - 10**9
    os.utime(mo_path, ns=(old, old))
    assert compile_catalogs(tmp_path) == [mo_path]
    assert Catalogs(tmp_path).gettext("es", "Hello") == "Buenas"


def test_compile_skips_unreadable_catalogs_without_raising(tmp_path):
    broken = tmp_path / "es" / "LC_MESSAGES" / "messages.po"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\xff\xfe not a po file \x00")
    write_po(tmp_path, "en", 'msgid "Hello"\nmsgstr "Hello"\n')
    written = compile_catalogs(tmp_path)
    assert tmp_path / "en" / "LC_MESSAGES" / "messages.mo" in written
    assert compile_catalogs(tmp_path / "nowhere") == []


def test_compile_uses_the_catalogs_plural_rules(tmp_path):
    write_po(tmp_path, "zh_Hans", """\
        msgid "One slot"
        msgid_plural "{n} slots"
        msgstr[0] "{n}个号源"
        """)
    compile_catalogs(tmp_path)
    catalogs = Catalogs(tmp_path)
    assert catalogs.ngettext("zh_Hans", "One slot", "{n} slots", 1) == "1个号源"
    assert catalogs.ngettext("zh_Hans", "One slot", "{n} slots", 5) == "5个号源"


# --- Placeholders and catalog checks -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello", set()),
        ("Hello, {name}.", {"{name}"}),
        ("{name}, {name}", {"{name}"}),
        ("{when:%H:%M} {count!r}", {"{when}", "{count}"}),
        ("Press {0} or {}", {"{0}", "{}"}),
        ("Literal {{braces}}", set()),
        ("Hello, %(name)s.", {"%(name)s"}),
        ("%(count)d slots", {"%(count)d"}),
        ("%s and %d", {"%s", "%d"}),
        ("100%% sure, 50% off, 50 % de descuento", set()),
        ("{name} and %(name)s", {"{name}", "%(name)s"}),
        ("Broken {name", {MALFORMED}),
        ("Broken }", {MALFORMED}),
    ],
)
def test_placeholders_finds_both_forms(text, expected):
    assert placeholders(text) == expected


def test_placeholders_tells_the_two_forms_apart():
    assert placeholders("{name}") != placeholders("%(name)s")
    assert placeholders("%(n)s") != placeholders("%(n)d")


def test_placeholders_of_non_text_is_empty():
    assert placeholders(None) == set()  # type: ignore[arg-type]


def test_a_complete_catalog_has_no_problems(locales):
    for lang in SHIPPED:
        po_path = locales / lang / "LC_MESSAGES" / "messages.po"
        problems = catalog_problems(po_path)
        expected = 1 if lang == "es" else 0  # the es fixture keeps one fuzzy entry
        assert len(problems) == expected, problems


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ('msgid "Hello"\nmsgstr ""\n', "untranslated"),
        ('#, fuzzy\nmsgid "Hello"\nmsgstr "Hola"\n', "fuzzy"),
        ('msgid "Hello, {name}."\nmsgstr "Hola, {nombre}."\n', "placeholders"),
        ('msgid "Hello, {name}."\nmsgstr "Hola."\n', "placeholders"),
        ('msgid "Hello."\nmsgstr "Hola, {name}."\n', "placeholders"),
        ('msgid "Hello, %(name)s."\nmsgstr "Hola, %(nombre)s."\n', "placeholders"),
        ('msgid "Hello, %(name)s."\nmsgstr "Hola, {name}."\n', "placeholders"),
        ('msgid "Hello, {name}."\nmsgstr "Hola, {name."\n', "placeholders"),
        ('msgid "One"\nmsgid_plural "{n} slots"\nmsgstr[0] "Uno"\nmsgstr[1] ""\n', "untranslated"),
        ('msgid "One"\nmsgid_plural "{n} slots"\nmsgstr[0] "Uno"\nmsgstr[1] "{count} huecos"\n', "not in the msgid"),
        ('msgid "One"\nmsgid_plural "{n} slots"\nmsgstr[0] "Uno"\nmsgstr[1] "Varios"\n', "no plural form uses"),
        ('msgid "One"\nmsgid_plural "%(n)d slots"\nmsgstr[0] "Uno"\nmsgstr[1] "%(n)s huecos"\n', "not in the msgid"),
        ('msgid "One"\nmsgid_plural "{n} slots"\nmsgstr[0] "{n} huecos"\n', "untranslated plural form"),
    ],
)
def test_catalog_problems_reports_each_defect(tmp_path, body, complaint):
    po_path = write_po(tmp_path, "es", body)
    problems = catalog_problems(po_path)
    assert problems and complaint in problems[0], problems


def test_catalog_problems_reports_more_plural_forms_than_the_language_has(tmp_path):
    body = 'msgid "One"\nmsgid_plural "{n} slots"\nmsgstr[0] "{n}个"\nmsgstr[1] "{n}个"\n'
    po_path = write_po(tmp_path, "zh_Hans", body)
    assert "more translations than num_plurals" in catalog_problems(po_path)[0]


def test_catalog_problems_reports_a_fuzzy_header(tmp_path):
    po_path = write_po(tmp_path, "es", 'msgid "Hello"\nmsgstr "Hola"\n')
    po_path.write_text("#, fuzzy\n" + po_path.read_text(encoding="utf-8"), encoding="utf-8")
    assert any("header" in problem for problem in catalog_problems(po_path))
    headless = tmp_path / "headless.po"
    headless.write_text('msgid "Hello"\nmsgstr "Hola"\n', encoding="utf-8")
    assert any("header" in problem for problem in catalog_problems(headless))


def test_catalog_problems_reports_an_unreadable_file(tmp_path):
    assert "cannot be read" in catalog_problems(tmp_path / "missing.po")[0]
    garbled = tmp_path / "garbled.po"
    garbled.write_text('this is not a po file\n', encoding="utf-8")
    assert "cannot be read" in catalog_problems(garbled)[0]


def test_the_shipped_catalogs_exist():
    assert set(SHIPPED) <= set(supported_locales(LOCALES))


def test_every_shipped_catalog_is_complete():
    problems = [
        problem
        for po_path in sorted(LOCALES.glob("*/LC_MESSAGES/messages.po"))
        for problem in catalog_problems(po_path)
    ]
    assert problems == [], "\n".join(problems)


def test_every_shipped_catalog_compiles_and_loads(tmp_path):
    # A copy, so the test never writes .mo files into the working tree.
    copy = tmp_path / "locales"
    shutil.copytree(LOCALES, copy, ignore=shutil.ignore_patterns("*.mo"))
    compile_catalogs(copy)
    assert Catalogs(copy).locales == supported_locales(copy)


# --- Babel locales ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catalog", "babel"),
    [
        ("zh_Hans", "zh_Hans_CN"),
        ("zh-Hans", "zh_Hans_CN"),
        ("zh_CN", "zh_Hans_CN"),
        ("zh", "zh_Hans_CN"),
        ("zh_Hant", "zh_Hant_TW"),
        ("en", "en_US"),
        ("en_GB", "en_GB"),
        ("es", "es_ES"),
        ("es_419", "es_419"),
        ("de", "de_DE"),
        ("garbage!", "en"),
        ("xx", "en"),
        (None, "en"),
    ],
)
def test_babel_locale_maps_catalog_names(catalog, babel):
    assert babel_locale(catalog) == Locale.parse(babel)


# --- Formats --------------------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 01:30 UTC is 09:30 on Thursday 3 December 2026 in Shanghai.
APPOINTMENT = datetime(2026, 12, 3, 1, 30, tzinfo=timezone.utc)

EXPECTED = {
    "en": {
        format_date_long: "Thursday, December 3, 2026",
        format_date_short: "Thu, Dec 3",
        format_time: "9:30 AM",
        format_date_spoken: "Thursday the 3rd of December",
        format_time_spoken: "half past nine in the morning",
    },
    "zh_Hans": {
        format_date_long: "2026年12月3日星期四",
        format_date_short: "12月3日周四",
        format_time: "09:30",
        format_date_spoken: "12月3日星期四",
        format_time_spoken: "上午九点半",
    },
    "es": {
        format_date_long: "jueves, 3 de diciembre de 2026",
        format_date_short: "jue, 3 dic",
        format_time: "9:30",
        format_date_spoken: "jueves, 3 de diciembre",
        format_time_spoken: "las nueve y media de la mañana",
    },
}


@pytest.mark.parametrize(
    ("locale", "formatter", "expected"),
    [(locale, formatter, text) for locale, row in EXPECTED.items() for formatter, text in row.items()],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_formats_in_each_shipped_locale(locale, formatter, expected):
    assert formatter(APPOINTMENT, locale, SHANGHAI) == expected
    assert formatter(APPOINTMENT, locale, "Asia/Shanghai") == expected


@pytest.mark.parametrize("locale", ["zh_CN", "zh", "zh-Hans", "zh_Hans_CN"])
def test_chinese_aliases_format_like_zh_hans(locale):
    for formatter, expected in EXPECTED["zh_Hans"].items():
        assert formatter(APPOINTMENT, locale, SHANGHAI) == expected


def test_aware_datetimes_are_converted_into_the_hospital_zone():
    assert format_date_short(APPOINTMENT, "en", "America/New_York") == "Wed, Dec 2"
    assert format_time(APPOINTMENT, "en", "America/New_York") == "8:30 PM"
    assert format_time(APPOINTMENT, "en", "UTC") == "1:30 AM"


def test_naive_datetimes_and_dates_are_taken_as_hospital_time():
    naive = datetime(2026, 12, 3, 9, 30)
    assert format_time(naive, "en", "America/New_York") == "9:30 AM"
    assert format_date_long(date(2026, 12, 3), "en", "Pacific/Kiritimati") == "Thursday, December 3, 2026"


def test_iso_strings_are_accepted():
    assert format_time("2026-12-03T01:30:00+00:00", "es", SHANGHAI) == "9:30"
    assert format_date_spoken("2026-12-03", "en", SHANGHAI) == "Thursday the 3rd of December"


@pytest.mark.parametrize("value", [None, "", "not a date", 12345, object()])
def test_values_that_are_not_dates_give_empty_text(value):
    for formatter in EXPECTED["en"]:
        assert formatter(value, "en", SHANGHAI) == ""


def test_an_unknown_zone_leaves_the_time_in_its_own_zone():
    assert format_time(APPOINTMENT, "en", "Mars/Olympus_Mons") == "1:30 AM"


def test_unknown_locales_format_as_english():
    assert format_date_long(APPOINTMENT, "xx", SHANGHAI) == EXPECTED["en"][format_date_long]


def test_a_language_without_its_own_rules_uses_cldr():
    # Adding a language needs no code: German gets CLDR's forms, widened for speech.
    assert format_date_spoken(APPOINTMENT, "de", SHANGHAI) == "Donnerstag, 3. Dezember"
    assert format_time_spoken(APPOINTMENT, "de", SHANGHAI) == "9:30 morgens"
    assert format_date_spoken(APPOINTMENT, "fr", SHANGHAI) == "jeudi 3 décembre"


def test_english_times_fit_gsm7():
    # CLDR writes "9:30\u202fAM"; that one space would make the SMS UCS-2.
    for hour in range(24):
        text = format_time(datetime(2026, 12, 3, hour, 5), "en", SHANGHAI)
        assert count_segments(f"Your visit is at {text}.").encoding == "GSM-7", repr(text)


@pytest.mark.parametrize(
    ("day", "spoken"),
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"),
     (13, "13th"), (21, "21st"), (22, "22nd"), (23, "23rd"), (30, "30th"), (31, "31st")],
)
def test_english_spoken_dates_use_ordinals(day, spoken):
    assert f" the {spoken} of December" in format_date_spoken(date(2026, 12, day), "en", SHANGHAI)


@pytest.mark.parametrize(
    ("clock", "en", "zh", "es"),
    [
        (time(0, 0), "midnight", "午夜十二点", "las doce de la madrugada"),
        (time(8, 0), "eight o'clock in the morning", "上午八点", "las ocho de la mañana"),
        (time(9, 5), "nine oh five in the morning", "上午九点零五分", "las nueve y cinco de la mañana"),
        (time(10, 15), "quarter past ten in the morning", "上午十点十五分", "las diez y cuarto de la mañana"),
        (time(11, 45), "eleven forty-five in the morning", "上午十一点四十五分",
         "las once y cuarenta y cinco de la mañana"),
        (time(12, 0), "twelve noon", "中午十二点", "las doce del mediodía"),
        (time(13, 30), "half past one in the afternoon", "下午一点半", "la una y media de la tarde"),
        (time(14, 20), "two twenty in the afternoon", "下午两点二十分", "las dos y veinte de la tarde"),
    ],
)
def test_spoken_times_are_words(clock, en, zh, es):
    assert format_time_spoken(clock, "en", None) == en
    assert format_time_spoken(clock, "zh_Hans", None) == zh
    assert format_time_spoken(clock, "es", None) == es


def test_spoken_forms_have_no_zero_padded_digits():
    for locale in ["en", "zh_Hans", "es", "de", "fr", "ja"]:
        for hour in range(24):
            moment = datetime(2026, 12, 3, hour, 5)
            spoken = format_date_spoken(moment, locale, None) + " " + format_time_spoken(moment, locale, None)
            # A zero-padded hour ("09:05") is read as "zero nine"; minutes may be "05".
            assert not re.search(r"(?<![\d:])0\d", spoken), (locale, spoken)


@given(
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.sampled_from(["en", "zh_Hans", "es", "zh_CN", "de", "ar", "xx", "", "!!"]),
    st.sampled_from([SHANGHAI, "America/Mexico_City", "UTC", "Not/AZone", "", None]),
)
def test_formatters_never_raise(moment, locale, zone):
    for formatter in EXPECTED["en"]:
        assert isinstance(formatter(moment, locale, zone), str)
