"""The words the engine understands, handed to it as data.

Rule: no word of any language lives here. `Words` is built from each language's table
(locales/<code>/words.toml, read by assistant/i18n/words.py at start-up) and installed
once with `engine.parse.use_words`; the rules that read the words stay in parse.py and
the steps. Every language's words are understood in every conversation, so a patient may
answer "sí" in an English one. The engine itself never reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

# The tables a language may give, and what each holds (see locales/en/words.toml).
LISTS = ("greetings", "yes", "no", "markers", "noon", "choice_fillers", "mention_fillers")
TABLES = ("language_names", "global_keys", "cardinals", "ordinals", "months", "weekdays",
          "relative_days", "strong_day_parts", "day_part_phrases", "options")


@dataclass(frozen=True)
class Words:
    """Every shipped language's words, merged; `markers` stay per language, since they
    tell which language a message is written in."""

    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tables: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    markers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def list(self, name: str) -> tuple[str, ...]:
        return self.lists.get(name, ())

    def table(self, name: str) -> Mapping[str, tuple[str, ...]]:
        return self.tables.get(name, {})

    @classmethod
    def from_languages(cls, languages: Mapping[str, Mapping[str, Any]]) -> "Words":
        """Merge each language's plain table ({code: parsed words.toml}); a word given
        by two languages is kept once."""
        lists: dict[str, list[str]] = {name: [] for name in LISTS}
        tables: dict[str, dict[str, list[str]]] = {name: {} for name in TABLES}
        for data in languages.values():
            for name in LISTS:
                lists[name].extend(_words(data.get(name, ()), name))
            for name in TABLES:
                for key, words in dict(data.get(name, {})).items():
                    tables[name].setdefault(str(key), []).extend(_words(words, f"{name}.{key}"))
        return cls(
            lists={name: tuple(dict.fromkeys(words)) for name, words in lists.items()},
            tables={name: {key: tuple(dict.fromkeys(words)) for key, words in table.items()}
                    for name, table in tables.items()},
            markers={code: tuple(_words(data.get("markers", ()), "markers"))
                     for code, data in languages.items()},
        )


def _words(value: Any, where: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(w, str) for w in value):
        raise ValueError(f"words: {where} must be a list of texts")
    return [w for w in value if w.strip()]
