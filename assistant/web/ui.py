"""The staff pages' and the simulator's own words, in the visitor's language.

Rule: the web UI is translated through the same Babel catalogs as the patients'
messages. The language is the one chosen on the page (kept in the session), else the
browser's Accept-Language, else the hospital's default. Templates call `_("...")`,
which pybabel extracts from them (config/babel.cfg).
"""

from __future__ import annotations

from flask import current_app, request, session

LANGUAGE_KEY = "ui_locale"


def ui_locale() -> str:
    settings = current_app.config["CARELINE"].settings
    chosen = session.get(LANGUAGE_KEY)
    if chosen in settings.locales:
        return chosen
    offered = [code.replace("_", "-") for code in settings.locales]
    best = request.accept_languages.best_match(offered + [code.split("_")[0] for code in settings.locales])
    for code in settings.locales:
        if best and (best == code.replace("_", "-") or best == code.split("_")[0]):
            return code
    return settings.default_locale


def gettext(msgid: str, **params: object) -> str:
    catalogs = current_app.config["CARELINE_RENDERER"].catalogs
    return catalogs.gettext(ui_locale(), msgid, **params)


def language_names() -> list[tuple[str, str]]:
    """(code, its own name) for the language switcher."""
    from babel import Locale

    settings = current_app.config["CARELINE"].settings
    return [(code, Locale.parse(code).get_display_name(Locale.parse(code)) or code)
            for code in settings.locales]


def install(flask_app) -> None:
    flask_app.jinja_env.globals.update(_=gettext, ui_locale=ui_locale, language_names=language_names)

    @flask_app.post("/language")
    def choose_language():
        from flask import redirect

        chosen = request.form.get("locale", "")
        if chosen in current_app.config["CARELINE"].settings.locales:
            session[LANGUAGE_KEY] = chosen
        back = request.form.get("next", "/")
        return redirect(back if back.startswith("/") and not back.startswith("//") else "/")
