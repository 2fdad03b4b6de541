"""Recognise an empty application shell: a page whose content only JavaScript can build.

Single-page applications answer a plain HTTP request with a mount point
(``<div id="app">``, ``__next``, ``__nuxt``, a custom element...), script
bundles and little or no text. Such a body says nothing about the vendor's
claims: recording it as a version would look like "everything was deleted".
watcher reports it as the fetch outcome ``needs_browser`` instead, and
suggests ``fetch: browser``. Pure functions.
"""

from __future__ import annotations

from typing import Mapping

from selectolax.lexbor import LexborHTMLParser, LexborNode

from .config import Config
from .extract import NEVER_CONTENT, lines_of
from .store import SourceState

NEEDS_BROWSER = "needs_browser"
#: A page with more words than this is a page, whatever its scripts do ("Loading…" or
#: "Please enable JavaScript" are shells; a server-rendered app has its text in the HTML).
SHELL_MAX_WORDS = 15
#: Where the common frameworks mount their application (React, Next.js, Nuxt, Vue, Gatsby,
#: Angular, Svelte, Quasar). Custom elements (``<app-root>``) count too.
MOUNT_POINTS = (
    "#app, #root, #__next, #__nuxt, #___gatsby, #svelte, #q-app, "
    "[data-reactroot], [data-v-app], [ng-version], [ng-app]"
)
_SCRIPT_TYPES = frozenset({"", "text/javascript", "application/javascript", "module",
                           "text/ecmascript", "application/ecmascript"})


def detect_app_shell(html: str) -> str | None:
    """A description of the application shell ``html`` is, or None when it is a page with content."""
    tree = LexborHTMLParser(html)
    scripts = [node for node in tree.css("script") if _is_code(node)]
    if not scripts:
        return None
    tree.strip_tags(NEVER_CONTENT, recursive=True)
    body = tree.body
    words = len(" ".join(lines_of([body])).split()) if body is not None else 0
    if words > SHELL_MAX_WORDS:
        return None
    mount = _mount_point(body) if body is not None else None
    bundles = sum(1 for node in scripts if node.attributes.get("src"))
    if mount is None and (words or not bundles):
        # Without a mount point only a textless page that loads script bundles is an application;
        # a short page is just a short page, and a textless one with an inline script is just empty.
        return None
    where = f"{mount} " if mount else ""
    return (f"the page is an empty application shell ({where}with {len(scripts)} script(s) and "
            f"{words} word(s) of text): its content is built by JavaScript")


def browser_suggestions(config: Config, states: Mapping[str, SourceState]) -> list[str]:
    """Sources fetched over plain HTTP whose last check found an application shell."""
    return [
        f"{source.id}: the last check of {source.url} got an empty application shell; "
        f"set `fetch: browser` for it in {config.path}"
        for source in config.sources.values()
        if source.fetch == "http" and (state := states.get(source.id)) is not None
        and state.last_outcome == NEEDS_BROWSER
    ]


def _is_code(script: LexborNode) -> bool:
    """A script that runs: not JSON data (``__NEXT_DATA__``, JSON-LD) and not empty."""
    kind = (script.attributes.get("type") or "").strip().lower()
    return kind in _SCRIPT_TYPES and bool(script.attributes.get("src") or (script.text() or "").strip())


def _mount_point(body: LexborNode) -> str | None:
    found = body.css_first(MOUNT_POINTS)
    if found is not None:
        ident = found.attributes.get("id")
        return f'<{found.tag} id="{ident}">' if ident else f"<{found.tag}>"
    for node in body.traverse():
        if node.tag and "-" in node.tag and not node.tag.startswith("-"):
            return f"<{node.tag}>"
    return None
