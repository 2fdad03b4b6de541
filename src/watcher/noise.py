"""Noise: what changes on a page while its content does not. Pure functions on a parsed page.

Each rule handles one general class of noise and has a name, so that the
fidelity benchmark can switch rules off one at a time and measure what each
is worth. No rule names a site: rules read the page's structure (landmarks,
ARIA roles, the layout around the main text), the words that class and id
names are made of (``cookie-banner_cookieBanner__sW1Pc`` is made of *cookie*
and *banner*; the hash is ignored), and well-known encodings.

Three kinds of rules:

- **element** rules rewrite or drop elements of the watched part;
- **region** rules recognise page chrome among the regions that surround the
  main text (:func:`drop_page_chrome` walks down to the main text and asks
  them about every region it passes);
- **line** rules rewrite or drop lines of the extracted text.

A rule's ``whole_page_only`` says whether it also applies inside a part chosen
with ``select``: what a person selected is content, except for noise that is
never content (an address hidden from spam robots is still the address).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from selectolax.lexbor import LexborNode

# --------------------------------------------------------------------------
# Reading elements


_WORD = re.compile(r"\w+")
_NAME_PARTS = re.compile(r"[A-Za-z]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_STYLE_POSITION = re.compile(r"position\s*:\s*(fixed|sticky)", re.IGNORECASE)

#: Tags whose presence among an element's children shows it holds running text.
_TEXT_BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "dl"})
#: Content structures the walk to the main text never enters: their parts are content.
_CONTENT_STRUCTURES = _TEXT_BLOCKS | {"ul", "ol", "li", "tr", "td", "th", "dd", "dt"}


def element_children(node: LexborNode) -> Iterator[LexborNode]:
    child = node.child
    while child is not None:
        if child.is_element_node:
            yield child
        child = child.next


def text_of(node: LexborNode) -> str:
    return " ".join(_raw_text(node).split())


def _raw_text(node: LexborNode) -> str:
    return node.text(deep=True, separator=" ") or ""


#: Each Latin-1 byte as a word character (``a``) or a separator (a space): the same runs as ``\w+``.
_LATIN1_WORD_BYTES = bytes(ord("a") if _WORD.match(chr(b)) else ord(" ") for b in range(256))
#: Punctuation beyond Latin-1 that policy pages are full of; none is a word character, so each may
#: become a space without joining or splitting a word.
_COMMON_MARKS = "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u2022\u00a0\u200b\u2192\u20ac"
assert not any(_WORD.match(mark) for mark in _COMMON_MARKS)


def word_count(text: str) -> int:
    """Runs of letters and digits: ASCII art and bullets weigh nothing.

    Pages are counted region by region at every level of the walk to the main
    text, so counting is on the hot path: a Latin-1 text is counted by a byte
    translation in C, anything else by the regular expression.
    """
    if not text.isascii():
        for mark in _COMMON_MARKS:
            if mark in text:
                text = text.replace(mark, " ")
        try:
            data = text.encode("latin-1")
        except UnicodeEncodeError:
            return len(_WORD.findall(text))
    else:
        data = text.encode("ascii")
    marked = data.translate(_LATIN1_WORD_BYTES)  # only b"a" and b" " left: a word starts at each b" a"
    return marked.count(b" a") + marked.startswith(b"a")


def name_words(node: LexborNode) -> set[str]:
    """The words of an element's id, class names and ARIA label, lower case.

    ``mega--nav_dd``, ``siteFooter`` and ``Footer_root__x7Kq2`` give *nav*,
    *site footer* and *footer root*: BEM separators, camelCase and the hashes
    that CSS modules append are taken apart, so that a vocabulary of whole
    words can recognise them.
    """
    attributes = node.attributes
    names = f"{attributes.get('id') or ''} {attributes.get('class') or ''} {attributes.get('aria-label') or ''}"
    words: set[str] = set()
    for part in _NAME_PARTS.findall(names):
        words.update(piece.lower() for piece in _CAMEL.split(part))
    return words


def class_names(node: LexborNode) -> list[str]:
    return (node.attributes.get("class") or "").lower().split()


@dataclass
class _Measure:
    """Word counts of one element: all its words, and those inside links."""

    words: int
    link_words: int

    @classmethod
    def of(cls, node: LexborNode, text: str | None = None) -> _Measure:
        """The counts of ``node``, whose text (``_raw_text``) the caller may already have read."""
        links = word_count(" ".join(_raw_text(a) for a in node.css("a")))
        words = word_count(_raw_text(node) if text is None else text)
        return cls(words, min(links, words))

    @property
    def content_words(self) -> int:
        return self.words - self.link_words

    @property
    def link_dense(self) -> bool:
        """Mostly links: a menu, a list of footer links, a language switcher."""
        return self.words > 0 and self.link_words * 2 >= self.words


# --------------------------------------------------------------------------
# The rule registry


ELEMENT, REGION, LINE = "element", "region", "line"


@dataclass(frozen=True)
class NoiseRule:
    name: str
    handles: str  # the class of noise, in plain words
    kind: str  # element, region or line
    whole_page_only: bool
    function: Callable


def active(kind: str, whole_page: bool) -> list[NoiseRule]:
    """The rules of one kind that apply, read from :data:`RULES` at call time."""
    return [r for r in RULES if r.kind == kind and (whole_page or not r.whole_page_only)]


# --------------------------------------------------------------------------
# Element rules


_YEAR_IN_TEXT = re.compile(r"\b\d{4}\b")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def pin_relative_dates(root: LexborNode) -> None:
    """``<time datetime="2025-03-03">3 days ago</time>`` reads ``2025-03-03``: the same date every day.

    A date written relative to today changes every day while the page does
    not. Only ``time`` elements (and the ``relative-time``/``time-ago``
    elements of some sites) whose text holds no year are rewritten: an
    absolute date stays as the page words it.
    """
    for node in root.css("time[datetime], relative-time[datetime], time-ago[datetime]"):
        moment = _ISO_DATE.match(node.attributes.get("datetime") or "")
        if moment and not _YEAR_IN_TEXT.search(text_of(node)):
            node.replace_with(moment.group(0))


_RESPONSIVE_CLASS = re.compile(
    r"""^(?:
        (?:[a-z0-9]+:)+(?:hidden|block|flex|inline|inline-block|inline-flex|grid|contents|table)  # md:hidden
      | d-(?:xs|sm|md|lg|xl|xxl)-(?:none|block|flex|inline|inline-block|grid|table)            # d-md-none
      | (?:visible|hidden)-(?:xs|sm|md|lg|xl)(?:-\w+)?                                           # hidden-sm
      | (?:hide|show|only|visible|hidden)-(?:on-)?(?:mobile|tablet|desktop|phone)[\w-]*           # hide-tablet
      | (?:mobile|tablet|desktop|phone)-(?:only|hidden|visible)                                  # mobile-only
    )$""",
    re.VERBOSE,
)
#: A cheap CSS pre-selection of the elements worth testing against the pattern above.
_RESPONSIVE_CANDIDATES = ", ".join(
    f'[class*="{part}"]' for part in (":", "d-", "hidden", "visible", "hide", "show", "only")
)


def drop_responsive_duplicates(root: LexborNode) -> None:
    """A block written twice, once for small screens and once for large ones, is kept once.

    Only elements that carry a responsive-visibility class (``md:hidden``,
    ``d-lg-none``, ``hide-tablet``, ...) are compared, and only an exact copy
    of an earlier one is dropped, so no text is ever lost.
    """
    seen: set[str] = set()
    candidates = root.css(_RESPONSIVE_CANDIDATES)
    for node in outermost(n for n in candidates if any(_RESPONSIVE_CLASS.match(c) for c in class_names(n))):
        text = text_of(node)
        if not text:
            continue
        if text in seen:
            node.decompose()
        else:
            seen.add(text)


_SCREEN_READER_CLASS = re.compile(
    r"(?:^|[-_])(?:sr-only|sr-text|visually-?hidden|screen-?reader-(?:text|only)|a11y-hidden|"
    r"element-invisible|assistive-text)$"
)
_SCREEN_READER_CANDIDATES = ", ".join(
    f'[class*="{part}"]' for part in ("sr-", "hidden", "Hidden", "reader", "a11y", "invisible", "assistive")
)


def drop_screen_reader_text(root: LexborNode) -> None:
    """Text only screen readers get (``sr-only``, ``visually-hidden``): labels of icons and menus."""
    candidates = root.css(_SCREEN_READER_CANDIDATES)
    for node in outermost(n for n in candidates if any(_SCREEN_READER_CLASS.search(c) for c in class_names(n))):
        node.decompose()


def drop_skip_links(root: LexborNode) -> None:
    """"Skip to content" links: in-page links named *skip*, or standing before every other text.

    A heading's link to itself (``<h1 id="terms"><a href="#terms">``) is the
    heading, not a skip link.
    """
    first_text = next(
        (n for n in root.traverse(include_text=True) if n.is_text_node and _WORD.search(n.text_content or "")), None
    )
    for link in root.css('a[href^="#"]'):
        target = (link.attributes.get("href") or "#")[1:]
        if target and _inside_element_with_id(link, target):
            continue
        first = first_text is not None and _contains(link, first_text)
        if first or "skip" in name_words(link):
            link.decompose()


def _inside_element_with_id(node: LexborNode, element_id: str) -> bool:
    ancestor: LexborNode | None = node
    while ancestor is not None:
        if ancestor.is_element_node and ancestor.attributes.get("id") == element_id:
            return True
        ancestor = ancestor.parent
    return False


def _contains(ancestor: LexborNode, node: LexborNode) -> bool:
    while node is not None:
        if node.mem_id == ancestor.mem_id:
            return True
        node = node.parent
    return False


def outermost(nodes: Iterable[LexborNode], order: dict[int, int] | None = None) -> list[LexborNode]:
    """Nodes without repeats and without those nested in another of them.

    They keep the order they come in (selectolax gives one selector's matches
    in document order), or are sorted by ``order`` (node id -> position).
    """
    unique = {node.mem_id: node for node in nodes}
    chosen = list(unique.values())
    if order is not None:
        chosen.sort(key=lambda n: order.get(n.mem_id, 0))
    result = []
    for node in chosen:
        ancestor = node.parent
        while ancestor is not None and ancestor.mem_id not in unique:
            ancestor = ancestor.parent
        if ancestor is None:
            result.append(node)
    return result


# --------------------------------------------------------------------------
# Region rules: page chrome around the main text


@dataclass
class Level:
    """The regions side by side at one level of the walk down to the main text."""

    regions: list[LexborNode]
    measures: list[_Measure]
    lead: int  # the region with the most text outside links: where the main text goes on
    dominant: bool  # the lead holds most of that text: the others surround it

    def header_index(self, rules: list[NoiseRule]) -> int | None:
        """The last region before the lead that looks like the site's header or menu."""
        for index in range(self.lead - 1, -1, -1):
            if any(r.function(self, index) for r in rules if r.name in _HEADER_LIKE):
                return index
        return None


#: Region rules that recognise chrome by itself, without knowing where the main text is.
_STANDALONE = frozenset({"landmarks", "named-chrome", "consent-banners"})
#: Region rules that recognise a site's header or menu.
_HEADER_LIKE = frozenset({"landmarks", "named-chrome", "link-lists"})


_LANDMARK_TAGS = frozenset({"nav", "aside", "menu"})
_CHROME_ROLES = frozenset({
    "banner", "navigation", "contentinfo", "complementary", "search", "menu", "menubar", "toolbar",
    "dialog", "alertdialog",
})


def is_landmark_chrome(level: Level, index: int) -> bool:
    """Landmarks around the main text: navigation, asides, and the site's header and footer.

    A header or footer that holds plain text (``Last updated ...``) is kept;
    one made of links, or holding a menu, is the site's.
    """
    region = level.regions[index]
    if region.tag in _LANDMARK_TAGS or (region.attributes.get("role") or "").lower() in _CHROME_ROLES:
        return True
    return region.tag in ("header", "footer") and _is_site_band(level, index)


_NAVIGATION_WORDS = frozenset({
    "nav", "navbar", "navigation", "navmenu", "topnav", "subnav", "sidenav", "menu", "menubar", "megamenu",
    "sidebar", "breadcrumb", "breadcrumbs", "toc", "related", "share", "sharing", "social", "newsletter",
    "subscribe", "masthead", "topbar", "skip",
})
_HEADER_FOOTER_WORDS = frozenset({"header", "footer", "foot", "head"})


def is_named_chrome(level: Level, index: int) -> bool:
    """Regions whose id or class names them as menu, sidebar, related links, or the site's header or footer.

    A region named *header* or *footer* is the site's only when it is made of
    links or holds a menu: a policy's own footer (``Latest update: ...``) is
    part of the policy.
    """
    words = name_words(level.regions[index])
    if words & _NAVIGATION_WORDS:
        return True
    return bool(words & _HEADER_FOOTER_WORDS) and _is_site_band(level, index)


def _is_site_band(level: Level, index: int) -> bool:
    """A header or footer of the site: made of links, or holding a menu."""
    region = level.regions[index]
    if level.measures[index].link_dense or region.css_first("nav, menu, [role=navigation], [role=menubar]"):
        return True
    return any(name_words(node) & _NAVIGATION_WORDS for node in region.css("[class], [id]"))


_CONSENT_WORDS = frozenset({
    "cookie", "cookies", "cookiebanner", "cookiebar", "cookienotice", "cookieconsent", "consent", "gdpr",
    "ccpa", "cmp", "modal", "popup", "overlay", "dialog", "lightbox", "toast", "snackbar",
})


def is_consent_overlay(level: Level, index: int) -> bool:
    """Cookie banners, consent managers and other overlays laid over the page.

    They are named so (*cookie*, *consent*, *gdpr*, *modal*, *popup*, ...) on
    the region or on the element that fills it, and they ask for a choice
    (they hold buttons); their cookie tables change whenever a tracker is
    added, without the page changing. A cookie policy's own section, named
    *cookie* too, asks for nothing and stays.
    """
    region = level.regions[index]
    if region.css_first(_BUTTONS) is None:
        return False
    node: LexborNode | None = region
    while node is not None:
        if name_words(node) & _CONSENT_WORDS:
            return True
        children = [c for c in element_children(node) if text_of(c)]
        node = children[0] if len(children) == 1 else None
    return False


_BUTTONS = 'button, [role=button], [class*="btn"], [class*="button"], [class*="Button"]'


_ANNOUNCEMENT_WORDS = frozenset({"announcement", "announcements", "banner", "promo", "promotion", "alert", "ribbon"})
_FLOATING_CLASSES = frozenset({"fixed", "sticky", "fixed-top", "fixed-bottom", "sticky-top", "sticky-bottom",
                               "position-fixed", "position-sticky"})
_LIVE_ROLES = frozenset({"alert", "status", "marquee", "timer", "log"})
#: A bar above the header holds a line or two; anything longer is not taken for one.
_BAR_MAX_WORDS = 40


def is_announcement(level: Level, index: int) -> bool:
    """Announcement bars: above the site's header, floating (fixed or sticky), named so, or live regions."""
    region = level.regions[index]
    if name_words(region) & _ANNOUNCEMENT_WORDS:
        return True
    if (region.attributes.get("role") or "").lower() in _LIVE_ROLES or region.attributes.get("aria-live"):
        return True
    if {c.rsplit(":", 1)[-1] for c in class_names(region)} & _FLOATING_CLASSES:
        return True
    if _STYLE_POSITION.search(region.attributes.get("style") or ""):
        return True
    if level.dominant and index < level.lead and level.measures[index].words <= _BAR_MAX_WORDS:
        header = level.header_index(active(REGION, whole_page=True))
        return header is not None and index < header
    return False


def is_link_list(level: Level, index: int) -> bool:
    """Blocks of links beside the main text: menus and footers without a name or a landmark."""
    return level.dominant and level.measures[index].link_dense


def _holds_title(region: LexborNode) -> bool:
    """The page's title (an ``h1`` that is not a logo link) is never chrome, whatever wraps it."""
    for heading in region.css("h1"):
        if word_count(text_of(heading)) > sum(word_count(text_of(a)) for a in heading.css("a")):
            return True
    return False


def drop_page_chrome(body: LexborNode) -> None:
    """Walk from the body down to the main text, dropping the chrome each level puts around it.

    At each level the region with the most text outside links leads; when it
    holds most of that text, the walk goes on inside it. The walk stops at the
    element that holds running text itself (paragraphs, headings, tables):
    there, everything is content. The lead is never dropped, nor a region that
    holds the page's title.
    """
    rules = active(REGION, whole_page=True)
    node = body
    while rules:
        if any(c.tag in _TEXT_BLOCKS for c in element_children(node)) or _has_own_text(node):
            return
        # Each child's text is read once: it decides whether the child is a region, then is counted.
        texts = [(child, _raw_text(child)) for child in element_children(node)]
        texts = [(child, text) for child, text in texts if text and not text.isspace()]
        if not texts:
            return
        regions = [child for child, _ in texts]
        measures = [_Measure.of(child, text) for child, text in texts]
        content = [m.content_words for m in measures]
        level = Level(regions, measures, lead=-1, dominant=False)
        # A long cookie preference panel must not lead a short page: chrome that
        # shows by itself (by landmark or by name) does not compete.
        standalone = [r for r in rules if r.name in _STANDALONE]
        contenders = [i for i in range(len(regions)) if not any(r.function(level, i) for r in standalone)]
        lead = max(contenders or range(len(regions)), key=content.__getitem__)
        level.lead, level.dominant = lead, content[lead] * 2 > sum(content)
        doomed = [
            region for index, region in enumerate(regions)
            if index != lead and not _holds_title(region) and any(r.function(level, index) for r in rules)
        ]
        for region in doomed:
            region.decompose()
        node = regions[lead]
        if not level.dominant or node.tag in _CONTENT_STRUCTURES:
            return


def _has_own_text(node: LexborNode) -> bool:
    child = node.child
    while child is not None:
        if child.is_text_node and _WORD.search(child.text_content or ""):
            return True
        child = child.next
    return False


# --------------------------------------------------------------------------
# Line rules


_COPYRIGHT = re.compile(r"(?:©|\(c\)|\bcopyright\b)", re.IGNORECASE)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_COPYRIGHT_MAX_WORDS = 16


def drop_copyright_notice(line: str) -> str | None:
    """``© 2024 Example, Inc. All rights reserved.``: its year moves every January."""
    lowered = line.lower()
    if not ("©" in line or "(c)" in lowered or "copyright" in lowered):
        return line  # substring tests in C: the regular expression costs ten times as much on a long line
    if _COPYRIGHT.search(line) and _YEAR.search(line) and word_count(line) <= _COPYRIGHT_MAX_WORDS:
        return None
    return line


_URL = re.compile(r"https?://[^\s<>\"']+\?[^\s<>\"']*")
_TRACKING_PARAMETER = re.compile(
    r"^(?:utm_\w+|gclid|gclsrc|dclid|gbraid|wbraid|fbclid|msclkid|twclid|ttclid|li_fat_id|mc_cid|mc_eid|"
    r"_hsenc|_hsmi|__hssc|__hstc|__hsfp|hsctatracking|_ga|_gl|yclid|igshid|ref_src|oly_enc_id|oly_anon_id|"
    r"vero_id|vero_conv|mkt_tok|s_cid|cmpid|trk|trkid)$",
    re.IGNORECASE,
)


def strip_tracking_parameters(line: str) -> str:
    """Addresses written in the text lose the query parameters that only track who clicked."""
    return _URL.sub(lambda m: _without_tracking(m.group(0)), line)


def _without_tracking(url: str) -> str:
    base, _, query = url.partition("?")
    query, hash_mark, fragment = query.partition("#")
    kept = [p for p in query.split("&") if p and not _TRACKING_PARAMETER.match(p.split("=", 1)[0])]
    rebuilt = base + ("?" + "&".join(kept) if kept else "")
    return rebuilt + (hash_mark + fragment if hash_mark else "")


# --------------------------------------------------------------------------
# Applying the rules


def clean_elements(root: LexborNode, whole_page: bool) -> None:
    """Apply the element rules to the watched part of a page."""
    for rule in active(ELEMENT, whole_page):
        rule.function(root)


def clean_lines(lines: list[str], whole_page: bool) -> list[str]:
    """Apply the line rules to extracted lines; a rule returning None drops the line."""
    rules = active(LINE, whole_page)
    cleaned = []
    for line in lines:
        value: str | None = line
        for rule in rules:
            value = rule.function(value)
            if value is None:
                break
        if value:
            cleaned.append(value)
    return cleaned


#: Every rule, in the order they apply. The fidelity benchmark switches them off by name.
RULES: tuple[NoiseRule, ...] = (
    NoiseRule("relative-dates", "dates written relative to today ('3 days ago') in time elements", ELEMENT, False,
              pin_relative_dates),
    NoiseRule("responsive-duplicates", "blocks written twice for small and large screens", ELEMENT, False,
              drop_responsive_duplicates),
    NoiseRule("screen-reader-text", "text for screen readers only (sr-only, visually-hidden)", ELEMENT, True,
              drop_screen_reader_text),
    NoiseRule("skip-links", "'skip to content' links", ELEMENT, True, drop_skip_links),
    NoiseRule("landmarks", "header, footer, navigation and aside landmarks around the main text", REGION, True,
              is_landmark_chrome),
    NoiseRule("named-chrome", "menus, headers, footers and sidebars named so by id or class", REGION, True,
              is_named_chrome),
    NoiseRule("consent-banners", "cookie banners, consent managers and other overlays", REGION, True,
              is_consent_overlay),
    NoiseRule("announcement-bars", "announcement bars above the header, floating or live", REGION, True,
              is_announcement),
    NoiseRule("link-lists", "blocks of links beside the main text (unnamed menus and footers)", REGION, True,
              is_link_list),
    NoiseRule("copyright-years", "copyright notices whose year changes every January", LINE, True,
              drop_copyright_notice),
    NoiseRule("tracking-parameters", "tracking parameters in addresses written in the text", LINE, False,
              strip_tracking_parameters),
)
