"""Message translation for the command line (gettext domain ``virtkit``).

Every user-facing string goes through :func:`_` (translated now) or is marked
with :func:`N_` (translated where it is shown, e.g. help texts kept in the
command table). ``scripts/update-pot`` extracts both into ``po/virtkit.pot``.

Catalogs are looked up in ``virtkit/locale/<lang>/LC_MESSAGES/virtkit.mo``
inside the installed package. Under the C or POSIX locale (or none), the
:mod:`gettext` module is not even imported: start-up time matters.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["_", "N_", "DOMAIN", "LOCALEDIR"]

#: The gettext domain.
DOMAIN = "virtkit"
#: Where compiled catalogs are installed.
LOCALEDIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "locale")

_translate: Callable[[str], str] | None = None


def _(message: str) -> str:
    """Translate ``message`` into the user's language (identity when none applies)."""
    global _translate
    if _translate is None:
        _translate = _load()
    return _translate(message)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark ``message`` for extraction without translating it yet."""
    return message


def _identity(message: str) -> str:
    return message


def _load() -> Callable[[str], str]:
    # gettext picks the first non-empty of these variables; C and POSIX mean "untranslated".
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            lang = value.split(":")[0].split(".")[0]
            if lang in ("C", "POSIX"):
                return _identity
            break
    else:
        return _identity
    import gettext

    return gettext.translation(DOMAIN, LOCALEDIR, fallback=True).gettext
