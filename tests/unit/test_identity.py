"""Identity rules: ID numbers, names, phones, masks, blind indexes and encryption.

The check characters are compared with an independent ISO 7064 MOD 11-2 implementation
written out below, so a wrong weight table in the code cannot agree with itself.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings, strategies as st

from assistant.booking import identity
from assistant.booking.identity import IdentityRefusal, IdNumber, Keyring

GENERIC_PATTERN = "^[A-Z0-9]{6,20}$"
TODAY = date(2026, 12, 1)

# Written out by hand (2^(17-i) mod 11), not derived from the code under test.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = {0: "1", 1: "0", 2: "X", 3: "9", 4: "8", 5: "7", 6: "6", 7: "5", 8: "4", 9: "3", 10: "2"}


def reference_check_char(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def with_check(first17: str) -> str:
    return first17 + reference_check_char(first17)


def cn(raw: str, **kw):
    return identity.validate_id_number("cn_resident_id", raw, generic_pattern=GENERIC_PATTERN, **kw)


def generic(raw: str, pattern: str = GENERIC_PATTERN):
    return identity.validate_id_number("generic", raw, generic_pattern=pattern)


# ---- Chinese resident ID numbers ------------------------------------------------------


def test_reference_implementation_agrees_with_a_published_number():
    # 11010519491231002X is the example number of GB 11643-1999.
    assert reference_check_char("11010519491231002") == "X"


@pytest.mark.parametrize("first17", [
    "11010519491231002",
    "32031119700101123",
    "51010720000229234",
    "44030619851112001",
    "65010219991231999",
    "11010520260101000",
])
def test_check_character_matches_iso_7064_mod_11_2(first17):
    assert identity.cn_resident_id_check_char(first17) == reference_check_char(first17)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_matches_reference_for_any_17_digits(first17):
    assert identity.cn_resident_id_check_char(first17) == reference_check_char(first17)


def test_known_valid_number_is_accepted_with_its_birth_date():
    result = cn("11010519491231002X")
    assert result == IdNumber("cn_resident_id", "11010519491231002X", date(1949, 12, 31))


@pytest.mark.parametrize("first17,birth", [
    ("32031119700101123", date(1970, 1, 1)),
    ("51010720000229234", date(2000, 2, 29)),
    ("44030619851112001", date(1985, 11, 12)),
])
def test_computed_valid_numbers_are_accepted(first17, birth):
    number = with_check(first17)
    result = cn(number, today=TODAY)
    assert isinstance(result, IdNumber), result
    assert result.value == number and result.birth_date == birth


def test_lowercase_x_is_accepted_and_normalised():
    result = cn("11010519491231002x")
    assert isinstance(result, IdNumber) and result.value == "11010519491231002X"


def test_separators_and_spaces_are_ignored():
    result = cn(" 110105 19491231 002-X ")
    assert isinstance(result, IdNumber) and result.value == "11010519491231002X"


def test_full_width_digits_are_accepted():
    full_width = "１１０１０５１９４９１２３１００２Ｘ"
    result = cn(full_width)
    assert isinstance(result, IdNumber) and result.value == "11010519491231002X"


@pytest.mark.parametrize("wrong", ["1", "9", "X"])
def test_wrong_check_character_is_refused(wrong):
    first17 = "32031119700101123"
    assert reference_check_char(first17) != wrong
    assert cn(first17 + wrong) == IdentityRefusal("id_number", "checksum")


def test_every_other_check_character_is_refused():
    first17 = "11010519491231002"
    refused = [c for c in "0123456789X" if cn(first17 + c) == IdentityRefusal("id_number", "checksum")]
    assert len(refused) == 10 and "X" not in refused


def test_impossible_embedded_date_is_refused():
    # 30 February, with a correct check character so only the date is wrong.
    assert cn(with_check("11010519500230001")) == IdentityRefusal("id_number", "birth_date_invalid")
    assert cn(with_check("11010519501301001")) == IdentityRefusal("id_number", "birth_date_invalid")


def test_birth_year_before_1900_is_refused():
    # 440524188001010014 is valid by checksum, but born in 1880.
    assert reference_check_char("44052418800101001") == "4"
    assert cn("440524188001010014") == IdentityRefusal("id_number", "birth_date_invalid")


def test_future_embedded_date_is_refused():
    number = with_check("11010520270101000")
    assert cn(number, today=TODAY) == IdentityRefusal("id_number", "birth_date_invalid")


def test_stated_birth_date_must_match_the_number():
    assert cn("11010519491231002X", stated_birth_date=date(1949, 12, 30)) == IdentityRefusal(
        "birth_date", "birth_date_mismatch")
    assert isinstance(cn("11010519491231002X", stated_birth_date=date(1949, 12, 31)), IdNumber)


@pytest.mark.parametrize("raw", ["11010519491231002", "11010519491231002X1", "1101051949123100"])
def test_wrong_length_is_refused(raw):
    assert cn(raw) == IdentityRefusal("id_number", "length")


@pytest.mark.parametrize("raw", ["1101051949A231002X", "11010519491231002Y", "X10105194912310020"])
def test_letters_inside_are_refused(raw):
    assert cn(raw) == IdentityRefusal("id_number", "characters")


def test_empty_number_is_refused():
    assert cn("   ") == IdentityRefusal("id_number", "empty")


def test_unknown_kind_is_refused():
    result = identity.validate_id_number("passport", "E12345678", generic_pattern=GENERIC_PATTERN)
    assert result == IdentityRefusal("id_number", "unknown_kind")


# ---- the generic kind -----------------------------------------------------------------


def test_generic_number_is_normalised_and_matched():
    assert generic("e1234-5678") == IdNumber("generic", "E12345678", None)
    assert generic(" AB 123 456 ") == IdNumber("generic", "AB123456", None)


@pytest.mark.parametrize("raw", ["AB12", "A" * 21, "护照123456", "AB#123456"])
def test_generic_number_outside_the_pattern_is_refused(raw):
    assert generic(raw) == IdentityRefusal("id_number", "pattern")


def test_generic_pattern_is_configurable():
    assert isinstance(generic("123456789", pattern=r"^\d{9}$"), IdNumber)
    assert generic("E12345678", pattern=r"^\d{9}$") == IdentityRefusal("id_number", "pattern")


def test_broken_generic_pattern_is_refused_not_raised():
    assert generic("E12345678", pattern="([A-Z") == IdentityRefusal("id_number", "pattern_invalid")


# ---- names ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw,reason", [
    ("", "empty"),
    ("   \u3000 ", "empty"),
    ("Wang\tFang", "characters"),
    ("Wang\x00Fang", "characters"),
    ("Wang\x07Fang", "characters"),
    ("\u200bWang Fang", "characters"),
    ("123456", "characters"),
    ("Wang Fang 2", "characters"),
    ("Wang<script>", "characters"),
    ("A" * 101, "length"),
])
def test_bad_names_are_refused(raw, reason):
    assert identity.validate_name(raw) == IdentityRefusal("name", reason)


@pytest.mark.parametrize("raw,expected", [
    ("王芳", "王芳"),
    ("  Wang   Fang ", "Wang Fang"),
    ("Mary-Jane O'Neil", "Mary-Jane O'Neil"),
    ("María José García", "María José García"),
    ("阿依古丽·买买提", "阿依古丽·买买提"),
    ("A" * 100, "A" * 100),
])
def test_good_names_are_accepted_and_tidied(raw, expected):
    assert identity.validate_name(raw) == expected


def test_name_index_form_ignores_case_width_and_spacing():
    assert identity.name_for_index("  WANG   Fang") == identity.name_for_index("wang fang")
    assert identity.name_for_index("ＷＡＮＧ Fang") == "wang fang"


# ---- phones ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw,region,expected", [
    ("13800138000", "CN", "+8613800138000"),
    ("+86 138 0013 8000", "CN", "+8613800138000"),
    ("138-0013-8000", "CN", "+8613800138000"),
    ("010 6512 0000", "CN", "+861065120000"),
    ("612 345 678", "ES", "+34612345678"),
    ("+34 612 34 56 78", "CN", "+34612345678"),
    ("(650) 253-0000", "US", "+16502530000"),
    ("020 7946 0958", "GB", "+442079460958"),
])
def test_phone_is_normalised_to_e164(raw, region, expected):
    assert identity.normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw,reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("hello", "invalid"),
    ("123", "invalid"),
    ("+999 123", "invalid"),
    ("1380013800", "invalid"),
    ("1" * 41, "invalid"),
    ("13800138000; DROP TABLE patient", "invalid"),
])
def test_junk_phone_is_refused(raw, reason):
    assert identity.normalise_phone(raw, "CN") == IdentityRefusal("phone", reason)


# ---- masks ----------------------------------------------------------------------------


def test_mask_id_keeps_four_characters_at_each_end():
    assert identity.mask_id("11010519491231002X") == "1101**********002X"
    assert identity.mask_id("E12345678") == "E123*5678"


def test_mask_id_of_short_values_hides_the_middle():
    assert identity.mask_id("AB1234") == "A****4"
    assert identity.mask_id("AB") == "**"
    assert identity.mask_id("") == ""


def test_mask_name_keeps_only_initials():
    assert identity.mask_name("Wang Fang") == "W*** F***"
    assert identity.mask_name("王芳") == "王*"
    assert "Fang" not in identity.mask_name("Wang Fang")


def test_mask_phone_keeps_country_code_and_last_four():
    assert identity.mask_phone("+8613800138000") == "+86*******8000"
    assert identity.mask_phone("+12345") == "******"


# ---- blind indexes and encryption -----------------------------------------------------


def test_blind_index_is_stable_for_one_key():
    keys = Keyring.generate()
    same = Keyring(keys.blind_index_key, Keyring.generate().encryption_keys)
    assert keys.blind_index("id:cn_resident_id", "11010519491231002X") == same.blind_index(
        "id:cn_resident_id", "11010519491231002X")
    assert len(keys.blind_index("name", "wang fang")) == 64


def test_blind_index_differs_per_key_and_purpose():
    one, other = Keyring.generate(), Keyring.generate()
    value = "11010519491231002X"
    assert one.blind_index("id:cn_resident_id", value) != other.blind_index("id:cn_resident_id", value)
    assert one.blind_index("id:cn_resident_id", value) != one.blind_index("id:generic", value)
    assert one.blind_index("id:cn_resident_id", value) != one.blind_index("name", value)
    assert value not in one.blind_index("id:cn_resident_id", value)


def test_audit_key_derives_from_blind_index_key():
    one = Keyring.generate()
    assert one.audit_key == Keyring(one.blind_index_key, Keyring.generate().encryption_keys).audit_key
    assert one.audit_key != Keyring.generate().audit_key


def test_encryption_round_trips_and_hides_the_text():
    keys = Keyring.generate()
    token = keys.encrypt("王芳 11010519491231002X")
    assert "11010519491231002X" not in token and "王芳" not in token
    assert keys.decrypt(token) == "王芳 11010519491231002X"
    assert keys.encrypt("x") != keys.encrypt("x")  # a fresh IV each time


def test_tampered_or_foreign_ciphertext_decrypts_to_none():
    keys = Keyring.generate()
    token = keys.encrypt("11010519491231002X")
    flipped = token[:30] + ("A" if token[30] != "A" else "B") + token[31:]
    assert keys.decrypt(flipped) is None
    assert Keyring.generate().decrypt(token) is None
    assert keys.decrypt("not a token") is None
    assert keys.decrypt("") is None
    assert keys.decrypt("ünïcode") is None


# ---- nothing raises -------------------------------------------------------------------


_texts = st.one_of(
    st.text(),
    st.text(alphabet="0123456789Xx -／１２３４５６７８９０Ｘ\u3000\t\n", max_size=25),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
)


@settings(max_examples=300, deadline=None)
@given(raw=_texts, kind=st.sampled_from(["cn_resident_id", "generic", "other", ""]),
       birth=st.one_of(st.none(), st.dates()))
def test_id_validation_never_raises(raw, kind, birth):
    result = identity.validate_id_number(kind, raw, generic_pattern=GENERIC_PATTERN,
                                         stated_birth_date=birth, today=TODAY)
    assert isinstance(result, (IdNumber, IdentityRefusal))


@settings(max_examples=300, deadline=None)
@given(raw=_texts)
def test_name_functions_never_raise(raw):
    result = identity.validate_name(raw)
    assert isinstance(result, (str, IdentityRefusal))
    assert isinstance(identity.name_for_index(raw), str)
    assert isinstance(identity.mask_name(raw), str)
    assert isinstance(identity.mask_id(raw), str)
    assert isinstance(identity.mask_phone(raw), str)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(_texts, st.text(alphabet="+0123456789 ()-.", max_size=30)),
       region=st.sampled_from(["CN", "US", "ES", "GB", "ZZ", ""]))
def test_phone_normalisation_never_raises(raw, region):
    assert isinstance(identity.normalise_phone(raw, region), (str, IdentityRefusal))


@settings(max_examples=200, deadline=None)
@given(raw=_texts)
def test_decrypt_never_raises(raw):
    # A fresh key has never encrypted anything, so no text can decrypt under it.
    assert Keyring.generate().decrypt(raw) is None


@given(value=st.one_of(st.none(), st.dates()))
def test_birth_date_validation_never_raises(value):
    result = identity.validate_birth_date(value, TODAY)
    assert isinstance(result, (date, IdentityRefusal))


def test_digits_shaped_like_a_resident_id_are_only_read_as_one():
    kinds = ("cn_resident_id", "generic")
    typo = "110105194912310021"  # wrong check character
    refused = identity.validate_any_id_number(typo, kinds=kinds, generic_pattern="^[A-Z0-9]{6,20}$")
    assert refused == identity.IdentityRefusal("id_number", "checksum")
    passport = identity.validate_any_id_number("E1234 5678", kinds=kinds, generic_pattern="^[A-Z0-9]{6,20}$")
    assert passport.kind == "generic" and passport.value == "E12345678"
    resident = identity.validate_any_id_number("11010519491231002x", kinds=kinds, generic_pattern="^$")
    assert resident.kind == "cn_resident_id" and resident.birth_date.year == 1949
