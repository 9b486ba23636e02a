"""Identity: validating, normalising, blinding and encrypting who a patient is.

Rule: a patient's ID number, name and phone number leave this module only as a
normalised value (to be blinded or encrypted at once), a blind index, a ciphertext or a
masked string. Every bad input is refused with an `IdentityRefusal`; nothing raises.
Keys are passed in (a `Keyring`); this module never reads settings or files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

CN_RESIDENT_ID = "cn_resident_id"
GENERIC = "generic"
ID_KINDS = (CN_RESIDENT_ID, GENERIC)

# ISO 7064 MOD 11-2 weights for the 17 leading digits: 2^(17-i) mod 11.
_CN_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CN_CHECK_CHARS = "10X98765432"
_SEPARATORS = re.compile(r"[\s\-./_]+")
_MAX_NAME_LENGTH = 100
_OLDEST_BIRTH_YEAR = 1900


@dataclass(frozen=True)
class IdentityRefusal:
    """Why an identity field was refused. `field` is id_number, name, birth_date or
    phone; `reason` is a stable code the engine turns into a kind sentence."""

    field: str
    reason: str


@dataclass(frozen=True)
class IdNumber:
    kind: str
    value: str  # normalised: upper-case, no separators
    birth_date: date | None  # embedded in the number, when the kind has one


def _compact(raw: str) -> str:
    """NFKC (full-width digits become ASCII), no separators, upper-case."""
    text = unicodedata.normalize("NFKC", raw or "")
    return _SEPARATORS.sub("", text).upper()


def cn_resident_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _CN_WEIGHTS))
    return _CN_CHECK_CHARS[total % 11]


def validate_id_number(
    kind: str,
    raw: str,
    *,
    generic_pattern: str,
    stated_birth_date: date | None = None,
    today: date | None = None,
) -> IdNumber | IdentityRefusal:
    if kind == CN_RESIDENT_ID:
        return _validate_cn_resident_id(raw, stated_birth_date, today)
    if kind == GENERIC:
        return _validate_generic(raw, generic_pattern)
    return IdentityRefusal("id_number", "unknown_kind")


_RESIDENT_ID_SHAPE = re.compile(r"\d{15,19}X?")


def validate_any_id_number(raw: str, *, kinds: tuple[str, ...] | list[str], generic_pattern: str,
                           today: date | None = None) -> IdNumber | IdentityRefusal:
    """An ID number of whichever accepted kind it is. Digits shaped like a resident ID
    (15 to 19 of them, maybe ending in X) are only ever read as one, so a typo gets
    "check the digits" instead of passing as a passport number."""
    value = _compact(raw)
    if CN_RESIDENT_ID in kinds and _RESIDENT_ID_SHAPE.fullmatch(value):
        order = [CN_RESIDENT_ID]
    else:
        order = [kind for kind in kinds if kind != CN_RESIDENT_ID] or list(kinds)
    result: IdNumber | IdentityRefusal = IdentityRefusal("id_number", "empty")
    for kind in order:
        result = validate_id_number(kind, value, generic_pattern=generic_pattern, today=today)
        if isinstance(result, IdNumber):
            return result
    return result


def _validate_cn_resident_id(
    raw: str, stated_birth_date: date | None, today: date | None
) -> IdNumber | IdentityRefusal:
    value = _compact(raw)
    if not value:
        return IdentityRefusal("id_number", "empty")
    if len(value) != 18:
        return IdentityRefusal("id_number", "length")
    if not (value[:17].isascii() and value[:17].isdigit()) or value[17] not in "0123456789X":
        return IdentityRefusal("id_number", "characters")
    if cn_resident_id_check_char(value[:17]) != value[17]:
        return IdentityRefusal("id_number", "checksum")
    try:
        embedded = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return IdentityRefusal("id_number", "birth_date_invalid")
    if embedded.year < _OLDEST_BIRTH_YEAR or (today is not None and embedded > today):
        return IdentityRefusal("id_number", "birth_date_invalid")
    if stated_birth_date is not None and stated_birth_date != embedded:
        return IdentityRefusal("birth_date", "birth_date_mismatch")
    return IdNumber(CN_RESIDENT_ID, value, embedded)


def _validate_generic(raw: str, pattern: str) -> IdNumber | IdentityRefusal:
    value = _compact(raw)
    if not value:
        return IdentityRefusal("id_number", "empty")
    try:
        matches = re.fullmatch(pattern, value) is not None
    except re.error:
        return IdentityRefusal("id_number", "pattern_invalid")
    if not matches:
        return IdentityRefusal("id_number", "pattern")
    if _holds_resident_id(value):
        # "A" + a real resident ID would be a second identity for one person.
        return IdentityRefusal("id_number", "contains_resident_id")
    return IdNumber(GENERIC, value, None)


def _holds_resident_id(value: str) -> bool:
    for start in range(0, len(value) - 17):
        part = value[start:start + 18]
        if part[:17].isdigit() and cn_resident_id_check_char(part[:17]) == part[17]:
            return True
    return False


def validate_name(raw: str) -> str | IdentityRefusal:
    """A display name: trimmed, single-spaced, at least one letter, no control chars."""
    text = unicodedata.normalize("NFC", raw or "")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in text):
        return IdentityRefusal("name", "characters")
    text = " ".join(text.split())
    if not text:
        return IdentityRefusal("name", "empty")
    if len(text) > _MAX_NAME_LENGTH:
        return IdentityRefusal("name", "length")
    if not any(ch.isalpha() for ch in text):
        return IdentityRefusal("name", "characters")
    if any(not (ch.isalpha() or ch in " .'-·•" or unicodedata.category(ch) == "Mn") for ch in text):
        return IdentityRefusal("name", "characters")
    return text


def name_for_index(name: str) -> str:
    """The form two spellings of one name share: case, width and spacing don't count."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def validate_birth_date(value: date | None, today: date) -> date | IdentityRefusal:
    if not isinstance(value, date):
        return IdentityRefusal("birth_date", "empty")
    if value > today:
        return IdentityRefusal("birth_date", "future")
    if value.year < _OLDEST_BIRTH_YEAR:
        return IdentityRefusal("birth_date", "too_old")
    return value


def normalise_phone(raw: str, default_region: str) -> str | IdentityRefusal:
    """E.164 (+8613812345678), or a refusal."""
    text = (raw or "").strip()
    if not text:
        return IdentityRefusal("phone", "empty")
    if len(text) > 40:
        return IdentityRefusal("phone", "invalid")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return IdentityRefusal("phone", "invalid")
    if not phonenumbers.is_valid_number(number):
        return IdentityRefusal("phone", "invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phone_address(raw: str, default_region: str) -> str | None:
    """A sender's number as a provider delivered it, in E.164 when it parses (valid or
    not: a new number range is still someone's phone), or as bare digits for a short
    code. None only when it holds no number at all."""
    text = (raw or "").strip()
    if not text or len(text) > 40:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        digits = re.sub(r"[\s\-().]", "", text)
        plus = digits.startswith("+")
        digits = digits.lstrip("+")
        if digits.isascii() and digits.isdigit() and 3 <= len(digits) <= 15:
            return ("+" if plus else "") + digits
        return None


def mask_id(value: str) -> str:
    """1101**********1234: enough for staff to tell two patients apart, no more."""
    if len(value) <= 8:
        return value[:1] + "*" * max(len(value) - 2, 0) + value[-1:] if len(value) > 2 else "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_name(name: str) -> str:
    """First character of each word, the rest starred: 'Wang Fang' -> 'W*** F***'."""
    return " ".join(word[:1] + "*" * max(len(word) - 1, 1) for word in name.split())


def mask_phone(e164: str) -> str:
    """+86*******5678."""
    if len(e164) <= 7:
        return "*" * len(e164)
    return e164[:3] + "*" * (len(e164) - 7) + e164[-4:]


def id_purpose(kind: str, document: str | None = None, country: str | None = None) -> str:
    """The blind-index purpose of an ID number. A generic number is only unique within
    its document type and issuing country, so both are part of it."""
    if kind == GENERIC:
        return f"id:{GENERIC}:{document or ''}:{country or ''}"
    return f"id:{kind}"


def address_purpose(kind: str) -> str:
    """The blind-index purpose of a channel address (phone, telegram, console)."""
    return f"address:{kind}"


def name_purpose() -> str:
    """The blind-index purpose of a name, over `name_for_index(name)`."""
    return "name"


@dataclass(frozen=True)
class Keyring:
    """The secrets, kept outside the database: one blind-index key and one or more
    encryption keys (the first encrypts; every one of them decrypts, so an old key can
    be retired by `assistant keys rotate`). The audit chain key is derived from the
    blind-index key so a hospital has two secrets to keep, not three."""

    blind_index_key: bytes
    encryption_keys: tuple[bytes, ...]  # Fernet keys (url-safe base64 of 32 bytes)

    @classmethod
    def generate(cls) -> "Keyring":
        return cls(
            blind_index_key=base64.urlsafe_b64encode(secrets.token_bytes(32)),
            encryption_keys=(Fernet.generate_key(),),
        )

    @property
    def encryption_key(self) -> bytes:
        """The key new values are encrypted with."""
        return self.encryption_keys[0]

    def blind_index(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of a normalised value; `purpose` keeps ID, name and address
        indexes from matching each other."""
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self.blind_index_key, message, hashlib.sha256).hexdigest()

    def short_hash(self, purpose: str, value: str) -> str:
        """A keyed, truncated hash, for logs and audit events that must match a value
        without revealing it."""
        return self.blind_index("short:" + purpose, value)[:12]

    @cached_property
    def audit_key(self) -> bytes:
        return hmac.new(self.blind_index_key, b"careline audit chain", hashlib.sha256).digest()

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        """None when the token was made with another key or was tampered with."""
        if not token:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            return None

    @cached_property  # built once: every booking encrypts several values
    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(key) for key in self.encryption_keys])
