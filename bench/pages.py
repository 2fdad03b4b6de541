"""Synthetic trust-center and policy pages for the performance benchmark. Pure and deterministic.

A page is what vendors publish: a head with inline styles and scripts, an
announcement bar, a site header with its menu, a long article (sections of
paragraphs, lists and a subprocessor table), related links, a footer with
link columns and a copyright line, a cookie banner and a JSON state blob.
Pages weigh 30 to 80 KB. Page ``number`` at ``version`` is always the same
bytes, so the farm (one process) and the benchmark (another) agree on what
was served and which sentence a record quotes.

Version ``v`` of a page is its first version after ``v`` editing rounds; a
round rewrites a sentence or two in the article, or a row of its table, as
vendors do.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

_VOCABULARY = ["access", "account", "activity", "administrator", "agreement", "analytics", "annual", "application", "approval", "archive", "assessment", "audit", "authentication", "authorization", "availability", "backup", "boundary", "breach", "business", "certificate", "certification", "change", "classification", "client", "cloud", "commitment", "compliance", "confidentiality", "configuration", "consent", "contract", "control", "controller", "customer", "data", "database", "deletion", "deployment", "detection", "device", "disclosure", "disaster", "document", "employee", "encryption", "endpoint", "environment", "evidence", "exception", "external", "firewall", "framework", "governance", "hosting", "identity", "incident", "independent", "information", "infrastructure", "integrity", "internal", "inventory", "isolation", "key", "laws", "legal", "logging", "maintenance", "management", "monitoring", "network", "notice", "obligation", "operation", "organization", "partner", "password", "penetration", "personal", "physical", "platform", "policy", "practice", "privacy", "procedure", "process", "processing", "processor", "program", "protection", "provider", "purpose", "recovery", "region", "regulation", "report", "request", "requirement", "residency", "resilience", "response", "responsibility", "retention", "review", "risk", "role", "safeguard", "scope", "secure", "security", "segregation", "server", "service", "session", "software", "storage", "subprocessor", "supplier", "system", "technical", "testing", "third", "threat", "training", "transfer", "transit", "trust", "update", "user", "vendor", "vulnerability", "workforce", "audit-ready", "we", "our", "you", "your", "the", "a", "an", "of", "to", "in", "for", "with", "on", "by", "under", "within", "across", "each", "every", "all", "any", "may", "must", "will", "shall", "can", "is", "are", "be", "been", "has", "have", "not", "only", "also", "where", "when", "which", "that", "this", "these", "those", "such", "other", "annually", "quarterly", "promptly", "securely", "independently", "reasonably"]
_HOSTS = ("eu-west", "us-east", "ap-south", "global")
_PURPOSES = ("hosting", "analytics", "support tooling", "email delivery", "payment processing", "monitoring",
             "model inference", "log storage", "identity", "backups")
_COUNTRIES = ("United States", "Ireland", "Germany", "Netherlands", "Japan", "Canada", "France", "Singapore")


@dataclass
class _Article:
    """The editable content of a page."""

    title: str
    sections: list[tuple[str, list[list[str]]]]  # (heading, paragraphs of sentences)
    rows: list[list[str]]  # subprocessor table


def _sentence(rng: random.Random, low: int = 9, high: int = 26) -> str:
    words = rng.choices(_VOCABULARY, k=rng.randint(low, high))
    return " ".join(words).capitalize() + "."


def _article(number: int) -> _Article:
    rng = random.Random(f"article-{number}")
    sections = []
    for section in range(rng.randint(6, 22)):
        heading = f"{section + 1}. " + " ".join(rng.choices(_VOCABULARY, k=rng.randint(2, 5))).title()
        paragraphs = [[_sentence(rng) for _ in range(rng.randint(2, 6))] for _ in range(rng.randint(2, 5))]
        sections.append((heading, paragraphs))
    rows = [
        [f"{rng.choice(_VOCABULARY).title()} {rng.choice(('Inc.', 'Ltd.', 'GmbH', 'LLC', 'B.V.'))}",
         rng.choice(_PURPOSES), rng.choice(_COUNTRIES)]
        for _ in range(rng.randint(8, 30))
    ]
    return _Article(f"Vendor {number} " + rng.choice(("Trust Center", "Privacy Policy", "Security Overview",
                                                      "Data Processing Addendum", "Subprocessors")),
                    sections, rows)


def _edit(article: _Article, number: int, round_number: int) -> None:
    """One editing round: rewrite one or two sentences, or one row of the table."""
    rng = random.Random(f"edit-{number}-{round_number}")
    for _ in range(rng.randint(1, 2)):
        if rng.random() < 0.2:
            row = rng.randrange(len(article.rows))
            article.rows[row] = [article.rows[row][0], rng.choice(_PURPOSES), rng.choice(_COUNTRIES)]
            continue
        _, paragraphs = article.sections[rng.randrange(len(article.sections))]
        sentences = paragraphs[rng.randrange(len(paragraphs))]
        sentences[rng.randrange(len(sentences))] = _sentence(rng)


def article_at(number: int, version: int) -> _Article:
    article = _article(number)
    for round_number in range(1, version + 1):
        _edit(article, number, round_number)
    return article


def quote(number: int) -> str:
    """The sentence a record cites on page ``number``: the second sentence of its first paragraph."""
    return _article(number).sections[0][1][0][1]


def _chrome(number: int) -> random.Random:
    """The site's chrome is the same for every version of a page."""
    return random.Random(f"chrome-{number % 50}")


def _style(rng: random.Random) -> str:
    rules = []
    for index in range(rng.randint(60, 160)):
        rules.append(f".c{index:x}-{rng.choice(_VOCABULARY)}{{margin:{rng.randint(0, 32)}px {rng.randint(0, 32)}px;"
                     f"color:#{rng.randrange(16 ** 6):06x};font-size:{rng.randint(10, 28)}px;"
                     f"display:{rng.choice(('block', 'flex', 'grid', 'none'))}}}")
    return "\n".join(rules)


def _script(rng: random.Random) -> str:
    config = ",".join(f'"{rng.choice(_VOCABULARY)}{i}":{rng.randint(0, 10 ** 6)}' for i in range(rng.randint(80, 200)))
    return ("window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}"
            f"gtag('js',new Date());window.__CONFIG__={{{config}}};")


def _links(rng: random.Random, count: int) -> str:
    return "".join(f'<li><a href="/{rng.choice(_VOCABULARY)}/{rng.choice(_VOCABULARY)}">'
                   f"{rng.choice(_VOCABULARY).title()} {rng.choice(_VOCABULARY)}</a></li>" for _ in range(count))


def page(number: int, version: int) -> bytes:
    """The HTML of page ``number`` after ``version`` editing rounds."""
    article = article_at(number, version)
    chrome = _chrome(number)
    build = hashlib.sha1(f"build-{number % 50}".encode()).hexdigest()[:10]
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{article.title}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<link rel="stylesheet" href="/assets/app.{build}.css">',
        f"<style>{_style(chrome)}</style>",
        f"<script>{_script(chrome)}</script>",
        f'<script src="/assets/app.{build}.js" defer></script></head><body>',
        '<div class="announcement-bar">New: read our latest security whitepaper</div>',
        '<header class="site-header"><a class="logo" href="/">Vendor</a>',
        f'<nav aria-label="Main"><ul class="menu">{_links(chrome, chrome.randint(15, 35))}</ul></nav></header>',
        f'<main id="content"><article><h1>{article.title}</h1>',
        f'<p class="updated">Last updated: 2025-0{1 + version % 9}-1{version % 10}</p>',
    ]
    for heading, paragraphs in article.sections:
        parts.append(f"<section><h2>{heading}</h2>")
        for index, sentences in enumerate(paragraphs):
            if index == 2:
                parts.append("<ul>" + "".join(f"<li>{s}</li>" for s in sentences) + "</ul>")
            else:
                parts.append("<p>" + " ".join(sentences) + "</p>")
        parts.append("</section>")
    parts.append("<section><h2>Subprocessors</h2><table><thead><tr><th>Entity</th><th>Purpose</th>"
                 "<th>Location</th></tr></thead><tbody>")
    parts.extend(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in article.rows)
    parts.append("</tbody></table></section></article></main>")
    parts.append(f'<aside class="related"><h3>Related</h3><ul>{_links(chrome, 8)}</ul></aside>')
    parts.append('<footer class="site-footer">')
    for column in range(4):
        parts.append(f'<div class="footer-col"><h4>Column {column + 1}</h4><ul>{_links(chrome, 10)}</ul></div>')
    parts.append("<p>© 2025 Vendor, Inc. All rights reserved.</p></footer>")
    parts.append('<div id="cookie-banner" class="cookie-consent" role="dialog"><p>We use cookies to improve '
                 'your experience.</p><button>Accept all</button><button>Reject all</button></div>')
    state = ",".join(f'"k{i}":"{chrome.choice(_VOCABULARY)}"' for i in range(chrome.randint(100, 400)))
    parts.append(f'<script type="application/json" id="__STATE__">{{{state}}}</script></body></html>')
    return "\n".join(parts).encode("utf-8")
