"""Which catalog serves a language tag, and what that catalog says.

Rule: language tags are mapped to catalog names here, explicitly, and catalogs are
loaded from their own paths. Nothing asks gettext to find a catalog by locale name:
that lookup is what silently serves English to a "zh_CN" caller when the catalog is
stored as "zh_Hans". The catalogs on disk are the list of supported languages, so
adding one takes a catalog and no code.

Nothing here raises on a bad tag, a missing or corrupt catalog, or a broken
translation: the patient always gets a sentence, in the worst case the msgid.

Dates and times belong in format.py; which locale a conversation is in belongs to
the engine's state.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Formatter
from types import MappingProxyType
from typing import Mapping, Sequence

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import NullTranslations, Translations

log = logging.getLogger(__name__)

DOMAIN = "messages"

# Speech engines (Google, and Twilio through it) report Mandarin as "cmn-Hans-CN".
_LANGUAGE_ALIASES = {"cmn": "zh"}
# Without a script subtag, these regions write Chinese in traditional characters.
_TRADITIONAL_CHINESE_REGIONS = frozenset({"TW", "HK", "MO"})
_SUBTAG = re.compile(r"^[A-Za-z0-9]{1,8}$")


def N_(msgid: str) -> str:
    """Mark a message id for extraction without translating it yet."""
    return msgid


class ExplainedError(ValueError):
    """A refusal to show a person: `message` is a msgid and `params` fill it, so the page
    says why in the reader's own language."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


# --- Which catalogs exist -------------------------------------------------------


def supported_locales(locales_dir: Path) -> list[str]:
    """Catalog folders under locales_dir that hold a messages .po or .mo, sorted."""
    try:
        folders = sorted(Path(locales_dir).iterdir())
    except (OSError, TypeError):
        return []
    return [folder.name for folder in folders if _holds_catalog(folder)]


def _holds_catalog(folder: Path) -> bool:
    messages = folder / "LC_MESSAGES"
    return any((messages / f"{DOMAIN}{suffix}").is_file() for suffix in (".po", ".mo"))


# --- Language tags ----------------------------------------------------------------


@dataclass(frozen=True)
class LanguageTag:
    """The parts of a BCP 47 or POSIX tag that choose a catalog."""

    language: str  # lower case, e.g. "zh"
    script: str | None  # title case, e.g. "Hans"; always set for Chinese
    region: str | None  # upper case, e.g. "CN" or "419"


def parse_tag(tag: str | None) -> LanguageTag | None:
    """Parse "zh-CN", "zh_Hans_CN", "es-419", "en_US.UTF-8"…; None when it is not a tag."""
    if not isinstance(tag, str):
        return None
    core = re.split(r"[.@]", tag.strip(), maxsplit=1)[0]  # POSIX ".UTF-8", "@euro"
    parts = core.replace("-", "_").split("_")
    if not all(_SUBTAG.match(part) for part in parts):
        return None
    language = parts[0].lower()
    if not (2 <= len(language) <= 3 and language.isascii() and language.isalpha()):
        return None
    language = _LANGUAGE_ALIASES.get(language, language)
    script, region = _script_and_region(parts[1:])
    if language == "zh" and script is None:
        script = "Hant" if region in _TRADITIONAL_CHINESE_REGIONS else "Hans"
    return LanguageTag(language, script, region)


def _script_and_region(subtags: Sequence[str]) -> tuple[str | None, str | None]:
    script = region = None
    for subtag in subtags:
        if len(subtag) == 4 and subtag.isalpha() and script is None and region is None:
            script = subtag.title()
        elif region is None and _is_region(subtag):
            region = subtag.upper()
        # Variants, extensions and private use choose no catalog.
    return script, region


def _is_region(subtag: str) -> bool:
    return (len(subtag) == 2 and subtag.isalpha()) or (len(subtag) == 3 and subtag.isdigit())


def _candidates(tag: LanguageTag) -> list[str]:
    """Catalog names for a tag, most specific first."""
    names = []
    if tag.script and tag.region:
        names.append(f"{tag.language}_{tag.script}_{tag.region}")
    if tag.script:
        names.append(f"{tag.language}_{tag.script}")
    if tag.region:
        names.append(f"{tag.language}_{tag.region}")
    names.append(tag.language)
    return names


def negotiate(tag: str | None, supported: Sequence[str], default: str) -> str:
    """The catalog name that serves an incoming language tag, or default.

    Tags are matched case-insensitively with "-" and "_" alike. Chinese without a
    script gets one from its region (TW, HK, MO: Hant; anything else: Hans). When
    no catalog has the tag's script or region, any catalog of the same language
    serves it, preferring the same script: so zh-TW gets zh_Hans while there is no
    zh_Hant catalog, because simplified characters are readable to most traditional
    readers and English is not. An Accept-Language list is tried in order of q.
    """
    catalogs = _catalogs_by_key(supported)
    for item in _ranked_tags(tag):
        parsed = parse_tag(item)
        if parsed is None:
            continue
        chosen = _exact_match(parsed, catalogs) or _same_language(parsed, catalogs)
        if chosen:
            return chosen
    return default


def _catalogs_by_key(supported: Sequence[str]) -> dict[str, str]:
    try:
        names = list(supported)
    except TypeError:
        names = []
    return {_key(name): name for name in names if isinstance(name, str)}


def _key(name: str) -> str:
    return name.replace("-", "_").lower()


def _ranked_tags(header: str | None) -> list[str]:
    """The tags of an Accept-Language style list, highest q first; one tag as is."""
    if not isinstance(header, str):
        return []
    ranked = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.partition(";")
        ranked.append((_quality(params), position, tag.strip()))
    ranked.sort(key=lambda entry: (-entry[0], entry[1]))
    return [tag for quality, _, tag in ranked if quality > 0]  # q=0 means "not this one"


def _quality(params: str) -> float:
    match = re.search(r"q\s*=\s*([0-9.]+)", params)
    try:
        return float(match.group(1)) if match else 1.0
    except ValueError:
        return 0.0


def _exact_match(tag: LanguageTag, catalogs: Mapping[str, str]) -> str | None:
    for name in _candidates(tag):
        if _key(name) in catalogs:
            return catalogs[_key(name)]
    return None


def _same_language(tag: LanguageTag, catalogs: Mapping[str, str]) -> str | None:
    same = [(name, parsed) for name in catalogs.values()
            if (parsed := parse_tag(name)) and parsed.language == tag.language]
    for name, parsed in same:
        if parsed.script == tag.script:
            return name
    return same[0][0] if same else None


# --- Babel locales ------------------------------------------------------------------


@lru_cache(maxsize=256)  # pure, and parsing CLDR data is a turn's most repeated cost
def babel_locale(catalog: str, fallback: str = "en") -> Locale:
    """The Babel locale that formats for a catalog: "zh_Hans" → zh_Hans_CN, "es" → es_ES.

    A catalog without a region gets CLDR's likely region, so formats never depend
    on Babel guessing. Unknown names get the fallback, then English.
    """
    tag = parse_tag(catalog)
    identifiers = ([_maximized(tag)] + _candidates(tag)) if tag else []
    for identifier in identifiers + [fallback, "en"]:
        try:
            return Locale.parse(identifier)
        except (ValueError, TypeError, UnknownLocaleError):
            continue
    return Locale("en")


def _maximized(tag: LanguageTag) -> str:
    if tag.region:
        return "_".join(filter(None, [tag.language, tag.script, tag.region]))
    likely = get_global("likely_subtags")
    for key in filter(None, [tag.script and f"{tag.language}_{tag.script}", tag.language]):
        full = parse_tag(likely.get(key))
        if full and full.region and (tag.script is None or full.script == tag.script):
            return "_".join(filter(None, [tag.language, tag.script, full.region]))
    return "_".join(filter(None, [tag.language, tag.script]))


# --- Placeholders and catalog checks -------------------------------------------------

MALFORMED = "{?}"  # stands for an unmatched brace, which str.format cannot render
_PERCENT_NAMED = re.compile(
    r"%\((?P<name>[^)]*)\)[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?(?P<kind>[diouxXeEfFgGcrsa])"
)
# Only bare %s and %d count: "50 % de descuento" must not read as a "% d" field.
_PERCENT_BARE = re.compile(r"%[sd]")


def placeholders(text: str) -> set[str]:
    """The fields a message fills in: "{name}", "{}", "%(name)s", "%s".

    A stray brace gives MALFORMED, so a translation that str.format cannot fill
    never matches a msgid that it can.
    """
    if not isinstance(text, str):
        return set()
    return _brace_fields(text) | _percent_fields(text)


def _brace_fields(text: str) -> set[str]:
    try:
        fields = [field for _, field, _, _ in Formatter().parse(text)]
    except ValueError:
        return {MALFORMED}
    return {"{" + field + "}" for field in fields if field is not None}


def _percent_fields(text: str) -> set[str]:
    text = text.replace("%%", "")
    named = {f"%({m['name']}){m['kind']}" for m in _PERCENT_NAMED.finditer(text)}
    bare = set(_PERCENT_BARE.findall(_PERCENT_NAMED.sub("", text)))
    return named | bare


def catalog_problems(po_path: Path) -> list[str]:
    """Every reason a .po file is not ready to ship: unreadable, fuzzy, untranslated,
    or a placeholder that differs between msgid and msgstr. Empty means ready."""
    try:
        with open(po_path, "rb") as po_file:
            catalog = read_po(po_file, abort_invalid=True)
    except (OSError, ValueError, PoFileError) as error:
        return [f"{po_path}: cannot be read: {error}"]
    problems = [f"{po_path}: the header is missing or marked fuzzy"] if catalog.fuzzy else []
    for message in catalog:
        if message.id:  # the empty msgid is the header
            where = f"{po_path}:{message.lineno}: {_first_id(message)!r}"
            problems += [f"{where}: {problem}" for problem in _message_problems(message)]
    return problems


def _first_id(message: Message) -> str:
    return message.id[0] if isinstance(message.id, (list, tuple)) else message.id


def _message_problems(message: Message) -> list[str]:
    problems = ["is fuzzy"] if message.fuzzy else []
    if message.pluralizable:
        return problems + _plural_problems(message)
    if not message.string:
        return problems + ["is untranslated"]
    expected, found = placeholders(message.id), placeholders(message.string)
    if expected != found:
        problems.append(f"placeholders {sorted(found)} should be {sorted(expected)}")
    return problems


def _plural_problems(message: Message) -> list[str]:
    # read_po pads missing forms with "" and, with abort_invalid, refuses extra ones,
    # so the number of forms needs no check of its own.
    strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
    forms = [form or "" for form in strings]
    if any(not form for form in forms):
        return ["has an untranslated plural form"]
    problems = []
    expected = set().union(*(placeholders(msgid) for msgid in message.id))
    for index, form in enumerate(forms):
        invented = placeholders(form) - expected
        if invented:
            problems.append(f"msgstr[{index}] has placeholders {sorted(invented)} not in the msgid")
    # One form may drop a placeholder ("One slot"), but together they use them all.
    missing = expected - set().union(*(placeholders(form) for form in forms))
    if missing:
        problems.append(f"no plural form uses {sorted(missing)}")
    return problems


# --- Compiling ------------------------------------------------------------------------


def compile_catalogs(locales_dir: Path) -> list[Path]:
    """Compile every locales/<lang>/LC_MESSAGES/*.po whose .mo is missing or older.

    Returns the .mo files written. Fuzzy entries are left out, as pybabel does.
    A .po that cannot be read or a .mo that cannot be written is logged and skipped.
    """
    written = []
    for po_path in sorted(Path(locales_dir).glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if not _is_stale(mo_path, po_path):
            continue
        if _compile(po_path, mo_path):
            written.append(mo_path)
    return written


def _is_stale(mo_path: Path, po_path: Path) -> bool:
    try:
        return mo_path.stat().st_mtime_ns < po_path.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def _compile(po_path: Path, mo_path: Path) -> bool:
    try:
        catalog = _read_po(po_path, locale=po_path.parent.parent.name)
        _write_mo_atomically(mo_path, catalog)
        return True
    except (OSError, ValueError, PoFileError) as error:
        log.warning("cannot compile %s: %s", po_path, error)
        return False


def _write_mo_atomically(mo_path: Path, catalog: Catalog) -> None:
    # Write beside the target and rename, so a process loading catalogs at the same
    # time never reads half a file. The ".*.mo" name keeps the temporary file ignored.
    handle, temporary = tempfile.mkstemp(dir=mo_path.parent, prefix=".", suffix=".mo")
    try:
        with os.fdopen(handle, "wb") as mo_file:
            write_mo(mo_file, catalog)
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; a service user must read it
        os.replace(temporary, mo_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_po(po_path: Path, locale: str) -> Catalog:
    # The folder name gives plural rules when the header has none, as pybabel does;
    # a folder name Babel does not know must not stop the compile.
    try:
        return _read_po_as(po_path, locale)
    except (UnknownLocaleError, ValueError):
        return _read_po_as(po_path, None)


def _read_po_as(po_path: Path, locale: str | None) -> Catalog:
    with open(po_path, "rb") as po_file:
        return read_po(po_file, locale=locale)


# --- Translating ------------------------------------------------------------------------


class _KeepMissing(dict):
    """Leaves an unknown {field} visible instead of failing the whole message."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill_placeholders(text: str, params: Mapping[str, object]) -> str:
    """Fill {name} fields; a message that cannot be filled is returned as written."""
    try:
        return text.format_map(_KeepMissing(params))
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        log.warning("cannot fill placeholders in %r", text)
        return text


class Catalogs:
    """The compiled catalogs of one locales directory, loaded once.

    A locale is negotiated to a catalog name first, so "zh_CN" and "zh-Hans" reach
    the zh_Hans catalog. An unknown locale gets the default catalog; a message
    missing from a catalog falls back to the default catalog and then to the msgid.
    """

    def __init__(self, locales_dir: Path, default: str = "en", domain: str = DOMAIN) -> None:
        loaded = {}
        for name in supported_locales(locales_dir):
            mo_path = Path(locales_dir) / name / "LC_MESSAGES" / f"{domain}.mo"
            translations = _load_mo(mo_path, domain)
            if translations is not None:
                loaded[name] = translations
        _fall_back_to(loaded, default)
        self._default = default
        self._translations: Mapping[str, NullTranslations] = MappingProxyType(loaded)

    @property
    def default(self) -> str:
        return self._default

    @property
    def locales(self) -> list[str]:
        """Catalog names with a loaded .mo, sorted."""
        return sorted(self._translations)

    def negotiate(self, tag: str | None) -> str:
        return negotiate(tag, self.locales, self._default)

    def gettext(self, locale: str, msgid: str, **params: object) -> str:
        translated = self._for(locale).gettext(msgid)
        return fill_placeholders(translated, params)

    def ngettext(self, locale: str, singular: str, plural: str, n: int, **params: object) -> str:
        """The plural form for n; {n} is available to the message unless given."""
        try:
            translated = self._for(locale).ngettext(singular, plural, n)
        except (TypeError, ValueError):
            translated = singular if n == 1 else plural
        return fill_placeholders(translated, {"n": n, **params})

    def _for(self, locale: str) -> NullTranslations:
        known = isinstance(locale, str) and locale in self._translations
        name = locale if known else self.negotiate(locale)
        return self._translations.get(name) or NullTranslations()


def _load_mo(mo_path: Path, domain: str) -> Translations | None:
    if not mo_path.is_file():
        return None
    try:
        with open(mo_path, "rb") as mo_file:
            return Translations(mo_file, domain=domain)
    except (OSError, ValueError, LookupError, struct.error) as error:
        # A corrupt catalog must not take the service down; its locale falls back.
        log.warning("cannot load %s: %s", mo_path, error)
        return None


def _fall_back_to(loaded: dict[str, Translations], default: str) -> None:
    fallback = loaded.get(default)
    if fallback is None:
        return
    for name, translations in loaded.items():
        if name != default:
            translations.add_fallback(fallback)
