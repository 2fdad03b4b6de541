"""An Atom feed of flags (RFC 4287), so that editors can follow them in any feed reader.

One entry per flag, newest first. Ids are ``urn:uuid:`` names derived from the
database's own random id and the flag's row id: an entry keeps its id however
often the feed is written, and two watcher databases never share one. An
entry's ``updated`` time moves when the flag is seen again or closed, which is
when feed readers show it again.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config
from .evidence import REVIEW_DUE, WATCH_TERM
from .report import flag_views
from .report_html import flag_body_html
from .store import Store

ATOM = "http://www.w3.org/2005/Atom"
# Written as the default namespace (no "ns0:" prefixes), as feed readers expect.
ET.register_namespace("", ATOM)
#: Flags in the feed: the most recently updated ones.
DEFAULT_ENTRIES = 100
#: Characters XML 1.0 cannot carry, whatever the escaping.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def build_feed(config: Config, store: Store, limit: int = DEFAULT_ENTRIES) -> str:
    """The feed of the ``limit`` most recently updated flags, open or closed, as Atom XML."""
    rows = store.rows(
        """SELECT * FROM flags ORDER BY max(updated_at, ifnull(closed_at, '')) DESC, id DESC LIMIT ?""", [limit]
    )
    identity = store.row("SELECT id, created_at FROM database_identity")
    assert identity is not None, "every database gets an identity when it is created"
    database = uuid.UUID(identity["id"])
    entries = [_entry(view, row, database) for view, row in zip(flag_views(rows, config, store), rows, strict=True)]
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", database.urn)
    _text(feed, "title", "watcher: records to re-verify")
    _text(feed, "subtitle", f"Flags raised on the sources cited in {Path(config.path).name}")
    # The newest entry's time, so that writing the same flags twice gives the same feed.
    _text(feed, "updated", max((e.findtext(f"{{{ATOM}}}updated") or "" for e in entries),
                               default=identity["created_at"]))
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "watcher")
    _text(feed, "generator", "watcher").set("version", __version__)
    feed.extend(entries)
    ET.indent(feed)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"


def _entry(view: dict[str, Any], row: dict, database: uuid.UUID) -> ET.Element:
    entry = ET.Element(f"{{{ATOM}}}entry")
    _text(entry, "id", uuid.uuid5(database, f"flag/{row['id']}").urn)
    term = f" “{view['subject']}”" if view["reason"] == WATCH_TERM else ""
    where = f" on {view['source']}" if view["source"] else ""
    closed = " (verified)" if view["state"] != "open" else ""
    _text(entry, "title", f"{view['record']}: {view['reason']}{term}{where}{closed}")
    _text(entry, "published", view["detected_at"])
    _text(entry, "updated", max(view["updated_at"], row["closed_at"] or ""))
    if view["url"]:
        # The cited page: what a reader opens from the entry.
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=_clean(view["url"]))
    ET.SubElement(entry, f"{{{ATOM}}}category", term=view["reason"], label=_clean(view["reason_text"]))
    _text(entry, "summary", f"{view['record']}: {view['reason_text']}")
    content = ET.SubElement(entry, f"{{{ATOM}}}content", type="html")
    content.text = _clean(_content_html(view, row))
    return entry


def _content_html(view: dict[str, Any], row: dict) -> str:
    """The flag in a few lines of HTML (escaped once more by the XML writer, as Atom's type="html" wants)."""
    parts = [f"<p><strong>{escape(view['record'])}</strong>"
             + (f": {escape(view['question'])}" if view["question"] else "") + "</p>"]
    if view["status_claimed"]:
        parts.append(f"<p>Claimed: {escape(view['status_claimed'])}</p>")
    parts.append(f"<p>{escape(view['reason'])}: {escape(view['reason_text'])}</p>")
    if view["source"]:
        url = escape(view["url"] or "")
        parts.append(f'<p>Source: <a href="{url}">{escape(view["source"])}</a></p>')
    if view["subject"] and view["reason"] != REVIEW_DUE:
        parts.append(f"<p>About: {escape(view['subject'])}</p>")
    parts.append(flag_body_html(view))
    if view["state"] != "open" and row["closed_at"]:
        parts.append(f"<p>Verified and closed at {escape(row['closed_at'])}.</p>")
    return "\n".join(parts)


def _text(parent: ET.Element, name: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{name}")
    element.text = _clean(value)
    return element


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)
