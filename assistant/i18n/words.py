"""Reading each language's words (locales/<code>/words.toml) for the engine.

Rule: the one place the words files are read; the engine gets the result as a `Words`
value (assistant/engine/words.py) and never opens a file. A language with a catalog and
no words file still works with digits and keys.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from assistant.engine.words import Words

WORDS_FILE = "words.toml"


def load_words(locales_dir: Path) -> Words:
    """Every locales/<code>/words.toml, merged."""
    return _load(str(Path(locales_dir).resolve()))


@lru_cache(maxsize=4)  # the files are read once per process, however many apps are built
def _load(locales_dir: str) -> Words:
    languages = {}
    for path in sorted(Path(locales_dir).glob(f"*/{WORDS_FILE}")):
        with open(path, "rb") as handle:
            try:
                languages[path.parent.name] = tomllib.load(handle)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path} is not valid TOML: {exc}") from exc
    return Words.from_languages(languages)
