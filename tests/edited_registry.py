"""A small registry whose vendor edits its pages between two checks: the data editors' views are tested on.

After :func:`check_twice`, the database holds one flag of most kinds: a
changed quote (in two offerings), a watched term that appeared, a bare cite
whose text changed, a page that is gone, and a change on a long page that
affected no record.
"""

from __future__ import annotations

from conftest import html
from watcher.check import run_check
from watcher.config import Config, load_config
from watcher.store import Store

FILLER = "".join(f"<p>Paragraph {i} of our security programme overview.</p>" for i in range(1, 41))
SUBPROCESSORS = "<ul id='subprocessors'><li>Google Cloud | hosting</li><li>Cloudflare | network</li></ul>"
BEFORE = {
    "/trust": html("<h1>Trust</h1><p>Acme undergoes an annual SOC 2 Type II audit.</p>" + FILLER + SUBPROCESSORS),
    "/retention": html("<p>We delete prompts after 30 days.</p><p>Contact privacy@example.org.</p>"),
    "/baa": html("<p>Healthcare customers should contact sales.</p>"),
    "/status": html("<p>All systems operational.</p>"),
}
AFTER = {
    "/trust": BEFORE["/trust"]
    .replace("Paragraph 30 of our security", "Paragraph 30 of our revised security")
    .replace("</ul>", "<li>Oracle Cloud | model training &lt;b&gt;new&lt;/b&gt;</li></ul>"),
    "/retention": BEFORE["/retention"].replace("30 days", "14 days"),
    "/baa": html("<p>Healthcare customers should contact sales.</p><p>We sign a BAA on request.</p>"),
}
CONFIG = """
sources:
  trust:
    url: {base}/trust
    select: main
  subprocessors:
    url: {base}/trust
    select: "#subprocessors"
  retention:
    url: {base}/retention
  baa-page:
    url: {base}/baa
  status:
    url: {base}/status
offerings:
  acme:
    name: Acme API
    records:
      soc2:
        question: Is a SOC 2 Type II report available?
        status: Yes, sales-gated
        cites:
          - source: trust
            quote: Acme undergoes an annual SOC 2 Type II audit.
      retention:
        question: Is retention documented?
        status: 30 days
        cites:
          - source: retention
            quote: We delete prompts after 30 days.
      baa:
        question: Will they sign a HIPAA BAA?
        status: No public evidence
        cites:
          - source: baa-page
            watch_for: [BAA]
      subprocessors:
        question: Is the subprocessor list public?
        status: Yes
        cites:
          - subprocessors
      uptime:
        question: Is there a public status page?
        status: Yes
        cites:
          - status
  beta:
    name: Beta Chat
    records:
      retention:
        question: Does Beta Chat share Acme's retention?
        status: 30 days
        cites:
          - source: retention
            quote: We delete prompts after 30 days.
"""


def check_twice(site, write_config, store: Store) -> Config:
    """Serve the pages, check them all, let the vendor edit them (and lose /status), check again."""
    for path, body in BEFORE.items():
        site.page(path, body)
    config = load_config(write_config(CONFIG.format(base=site.url("").rstrip("/"))))
    run_check(config, store, list(config.sources))
    for path, body in AFTER.items():
        site.page(path, body)
    site.page("/status", "gone", status=404)
    run_check(config, store, list(config.sources))
    return config
