"""The check pipeline against a real local server: which records get flagged, and which do not."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from werkzeug import Response

from conftest import Clock, html
from watcher.check import due_sources, run_check

POLICY_V1 = html(
    """
<h1>Data commitments</h1>
<p>We automatically delete logged prompts and generations after 30 days. Deletion covers backups.</p>
<p>Customers can opt out of training in the dashboard at any time.</p>
<h2>Subprocessors</h2>
<ul><li>Google Cloud, hosting</li><li>Cloudflare, network security</li></ul>
<p>Questions? Contact privacy@example.org.</p>
"""
)

CONFIG = """
sources:
  policy:
    url: {url}
offerings:
  acme:
    name: Acme API
    records:
      retention:
        cites:
          - source: policy
            quote: "We automatically delete logged prompts and generations after 30 days"
      training:
        cites:
          - source: policy
            quote: "Customers can opt out of training in the dashboard at any time."
      subprocessors:
        cites:
          - source: policy
      baa:
        status: No public evidence
        cites:
          - source: policy
            watch_for: ["BAA"]
"""


@pytest.fixture
def policy(site, make_config):
    site.page("/policy", POLICY_V1)
    return make_config(CONFIG.format(url=site.url("/policy")))


def open_flags(store):
    return {(f["record_id"], f["reason"]) for f in store.open_flags()}


def test_first_check_stores_a_version_and_flags_nothing_when_quotes_match(policy, check, store):
    summary = check(policy)
    assert [s.status for s in summary.sources] == ["new"]
    assert open_flags(store) == set()
    assert store.latest_version("policy").seq == 1


def test_noise_only_changes_record_no_change(site, make_config, check, store):
    def noisy(n: int) -> str:
        return f"""<!DOCTYPE html><html><head>
<meta name="csrf-token" content="tok{n}"><link rel="stylesheet" href="/app.{n}.css">
<script nonce="n{n}">window.t={n}</script><style>.c{n}{{}}</style></head><body>
<nav><a href="/">Home</a></nav>
<aside class="teaser">Teaser number {n}</aside>
<main class="build-{n}" data-rendered="{n}">
<!-- rendered at {n} -->
<h1 id="x{n}">Retention</h1>
<p class="p{n}">We keep   logs for
   30 days.<img src="/img.png?v={n}"></p>
</main>
<footer>Generated at 2026-01-0{n % 9 + 1} 12:0{n % 10}:00</footer>
<form><input type="hidden" name="csrf" value="{n}"></form>
</body></html>"""

    site.page("/p", noisy(1))
    config = make_config(f"sources:\n  p:\n    url: {site.url('/p')}\n")
    check(config)
    for n in range(2, 5):
        site.page("/p", noisy(n))
        summary = check(config)
        assert summary.sources[0].status == "unchanged", n
    assert store.rows("SELECT count(*) AS n FROM versions")[0]["n"] == 1
    assert store.rows("SELECT count(*) AS n FROM changes")[0]["n"] == 0
    # Each noisy body is still kept as evidence.
    assert store.rows("SELECT count(*) AS n FROM snapshots")[0]["n"] == 4


def test_edit_inside_a_quote_flags_only_that_record(policy, site, check, store):
    check(policy)
    site.page("/policy", POLICY_V1.replace("after 30 days", "after 90 days"))
    check(policy)
    flags = store.open_flags()
    assert {(f["record_id"], f["reason"]) for f in flags} == {
        ("acme/retention", "quote_changed"),
        ("acme/subprocessors", "content_changed"),
    }
    retention = next(f for f in flags if f["record_id"] == "acme/retention")
    assert retention["old"] == "We automatically delete logged prompts and generations after 30 days"
    assert retention["new"] == "We automatically delete logged prompts and generations after 90 days"


def test_edit_beside_a_quote_in_its_paragraph_is_a_context_change(policy, site, check, store):
    check(policy)
    site.page("/policy", POLICY_V1.replace("Deletion covers backups.", "Backups are kept for a year."))
    check(policy)
    flags = {f["record_id"]: f for f in store.open_flags()}
    assert flags["acme/retention"]["reason"] == "context_changed"
    assert "Backups are kept for a year." in flags["acme/retention"]["new"]
    assert "Deletion covers backups." in flags["acme/retention"]["old"]
    assert "acme/training" not in flags


def test_edit_far_from_a_quote_flags_nothing_quoted(policy, site, check, store):
    check(policy)
    site.page("/policy", POLICY_V1.replace("Cloudflare, network security", "Fastly, content delivery"))
    check(policy)
    assert open_flags(store) == {("acme/subprocessors", "content_changed")}
    change = store.rows("SELECT * FROM changes")[0]
    assert change["records_flagged"] == 1


def test_a_change_no_record_relies_on_is_recorded_without_flags(site, make_config, check, store):
    site.page("/p", html("<p>Retention is 30 days.</p><p>Office hours 9 to 5.</p>"))
    config = make_config(f"""
sources:
  p:
    url: {site.url('/p')}
offerings:
  o:
    records:
      r:
        cites:
          - source: p
            quote: Retention is 30 days.
""")
    check(config)
    site.page("/p", html("<p>Retention is 30 days.</p><p>Office hours 8 to 4.</p>"))
    summary = check(config)
    assert summary.sources[0].status == "changed"
    assert store.open_flags() == []
    assert store.rows("SELECT records_flagged FROM changes")[0]["records_flagged"] == 0


def test_watch_terms_raise_a_flag_when_they_appear_and_when_they_disappear(policy, site, check, store):
    check(policy)
    with_baa = POLICY_V1.replace("</ul>", "</ul><p>We now sign a BAA for the hosted API.</p>")
    site.page("/policy", with_baa)
    check(policy)
    flags = [f for f in store.open_flags() if f["record_id"] == "acme/baa"]
    assert [(f["reason"], f["subject"], f["new"]) for f in flags] == [
        ("watch_term", "BAA", "We now sign a BAA for the hosted API.")
    ]
    store.add_review("acme/baa", "tester", None, Clock()())
    site.page("/policy", POLICY_V1)
    check(policy)
    flags = [f for f in store.open_flags() if f["record_id"] == "acme/baa"]
    assert [(f["reason"], f["old"], f["new"]) for f in flags] == [
        ("watch_term", "We now sign a BAA for the hosted API.", None)
    ]


def test_a_watch_term_inside_another_word_does_not_count(policy, site, check, store):
    check(policy)
    site.page("/policy", POLICY_V1.replace("</ul>", "</ul><p>We support BAAS providers.</p>"))
    check(policy)
    assert ("acme/baa", "watch_term") not in open_flags(store)


def test_a_quote_not_on_the_page_is_flagged_at_the_first_check(site, make_config, check, store):
    site.page("/p", html("<p>We retain data for 30 days, unless the law requires otherwise.</p>"))
    config = make_config(f"""
sources:
  p:
    url: {site.url('/p')}
offerings:
  o:
    records:
      approx:
        cites:
          - source: p
            quote: "We retain data for 30 days, unless law requires otherwise."
      wrong:
        cites:
          - source: p
            quote: "We never store any customer data whatsoever."
""")
    check(config)
    flags = {f["record_id"]: f for f in store.open_flags()}
    assert flags["o/approx"]["reason"] == "quote_changed"
    assert flags["o/approx"]["new"] == "We retain data for 30 days, unless the law requires otherwise."
    assert flags["o/wrong"]["reason"] == "quote_missing"


def test_a_removed_quote_is_missing_and_shows_what_replaced_it(policy, site, check, store):
    check(policy)
    site.page("/policy", POLICY_V1.replace(
        "Customers can opt out of training in the dashboard at any time.",
        "Training settings are described in your contract."))
    check(policy)
    flag = next(f for f in store.open_flags() if f["record_id"] == "acme/training")
    assert flag["reason"] == "quote_missing"
    assert flag["old"] == "Customers can opt out of training in the dashboard at any time."
    assert flag["new"] == "Training settings are described in your contract."


def test_a_moved_quote_is_still_found(policy, site, check, store):
    check(policy)
    moved = POLICY_V1.replace(
        "<p>Customers can opt out of training in the dashboard at any time.</p>", ""
    ).replace("<p>Questions?", "<p>Customers can opt out of training in the dashboard at any time.</p><p>Questions?")
    site.page("/policy", moved)
    check(policy)
    assert ("acme/training", "quote_missing") not in open_flags(store)
    assert ("acme/training", "quote_changed") not in open_flags(store)


def test_quote_matching_ignores_case_whitespace_and_typography(site, make_config, check, store):
    site.page("/p", html("<p>Cohere\u2019s   platform \u2014 hosted\u00a0in the \u201cUS\u201d \u2013 is <b>SOC 2</b> compliant.</p>"))
    config = make_config(f"""
sources:
  p:
    url: {site.url('/p')}
offerings:
  o:
    records:
      r:
        cites:
          - source: p
            quote: "cohere's platform - hosted in the \\"us\\" - is soc 2   compliant."
""")
    check(config)
    assert store.open_flags() == []


def test_a_source_fetched_once_however_many_records_cite_it(policy, site, check):
    check(policy)
    assert site.hits("/policy") == 1


def test_not_found_flags_every_citing_record_at_once_and_stores_no_version(policy, site, check, store):
    check(policy)
    site.page("/policy", "gone", status=404)
    summary = check(policy)
    assert summary.sources[0].status == "failed"
    flags = store.open_flags()
    assert {f["reason"] for f in flags} == {"source_error"}
    assert {f["record_id"] for f in flags} == {"acme/retention", "acme/training", "acme/subprocessors", "acme/baa"}
    assert {f["outcome"] for f in flags} == {"not_found"}
    assert store.latest_version("policy").seq == 1
    check(policy)
    assert len(store.open_flags()) == 4  # one open flag per record, not one per run


def test_gone_is_flagged_at_once(policy, site, check, store):
    check(policy)
    site.page("/policy", "", status=410)
    check(policy)
    assert {f["outcome"] for f in store.open_flags()} == {"gone"}


def test_transient_failures_flag_only_after_three_checks_in_a_row(policy, site, check, store):
    check(policy)
    site.page("/policy", "busy", status=503)
    for _ in range(2):
        summary = check(policy)
        assert summary.sources[0].outcome == "server_error"
        assert store.open_flags() == []
    check(policy)
    assert {(f["reason"], f["outcome"]) for f in store.open_flags()} == {("source_error", "server_error")}
    assert store.rows("SELECT count(*) AS n FROM versions")[0]["n"] == 1
    assert store.rows("SELECT count(*) AS n FROM changes")[0]["n"] == 0


def test_a_recovered_source_raises_nothing_and_is_marked_recovered(policy, site, check, store):
    check(policy)
    site.page("/policy", "busy", status=500)
    check(policy)
    site.page("/policy", POLICY_V1)
    summary = check(policy)
    assert summary.sources[0].recovered
    assert summary.sources[0].status == "unchanged"
    assert store.open_flags() == []
    assert store.fetch_history("policy")[0]["recovered"] == 1


def test_a_503_then_ok_within_one_check_is_a_success(policy, site, check, store):
    calls = []

    def flaky(request):
        calls.append(request)
        if len(calls) == 1:
            return Response("busy", status=503, headers={"Retry-After": "0"})
        return Response(POLICY_V1, content_type="text/html")

    site.handler("/policy", flaky)
    summary = check(policy)
    assert summary.sources[0].status == "new"
    assert store.fetch_history("policy")[0]["attempts"] == 2


def test_a_timeout_is_a_failed_check_not_a_change(site, make_config, check, store):
    site.page("/p", html("<p>Text</p>"))
    config = make_config(f"""
settings:
  timeout: 0.5s
  retries: 0
  host_delay: 0s
sources:
  p:
    url: {site.url('/p')}
""")
    check(config)

    def slow(request):
        time.sleep(1.5)
        return Response(html("<p>Other text</p>"), content_type="text/html")

    site.handler("/p", slow)
    summary = check(config)
    assert summary.sources[0].outcome == "timeout"
    assert store.latest_version("p").seq == 1


def test_a_permanent_redirect_flags_source_moved_once(policy, site, check, store):
    site.page("/new-policy", POLICY_V1)
    site.page("/policy", "", status=301, headers={"Location": "/new-policy"})
    check(policy)
    flags = store.open_flags()
    assert {f["reason"] for f in flags} == {"source_moved"}
    assert {f["new"] for f in flags} == {site.url("/new-policy")}
    assert store.latest_version("policy") is not None  # the content at the target is still watched
    for flag in flags:
        store.add_review(flag["record_id"], "tester", None, Clock()())
    check(policy)
    assert store.open_flags() == []  # same target: not raised again
    site.page("/newer-policy", POLICY_V1)
    site.page("/policy", "", status=308, headers={"Location": "/newer-policy"})
    check(policy)
    assert {f["new"] for f in store.open_flags()} == {site.url("/newer-policy")}
    assert site.hits("/policy") == 3  # the configured URL is always the one fetched


def test_a_temporary_redirect_is_followed_silently(policy, site, check, store):
    site.page("/elsewhere", POLICY_V1)
    site.page("/policy", "", status=302, headers={"Location": "/elsewhere"})
    check(policy)
    assert store.open_flags() == []
    fetch = store.fetch_history("policy")[0]
    assert fetch["final_url"] == site.url("/elsewhere")
    assert '"status": 302' in fetch["redirects"]


def test_selector_drift_is_an_alert_not_a_deletion(site, make_config, check, store):
    site.page("/p", html('<div id="terms"><p>Retention is 30 days.</p></div>'))
    config = make_config(f"""
sources:
  p:
    url: {site.url('/p')}
    select: "#terms"
offerings:
  o:
    records:
      r:
        cites:
          - source: p
            quote: Retention is 30 days.
""")
    check(config)
    site.page("/p", html('<div class="terms-v2"><p>Retention is 30 days.</p></div>'))
    summary = check(config)
    assert summary.sources[0].status == "selector_missing"
    assert [(f["reason"]) for f in store.open_flags()] == ["selector_missing"]
    assert store.latest_version("p").seq == 1  # the text was not "deleted"
    check(config)
    assert len(store.open_flags()) == 1


def test_a_selector_matching_only_an_empty_element_is_drift(site, make_config, check, store):
    site.page("/p", html('<div id="terms"><p>Retention is 30 days.</p></div>'))
    config = make_config(f"sources:\n  p:\n    url: {site.url('/p')}\n    select: '#terms'\n"
                         "offerings:\n  o:\n    records:\n      r:\n        cites:\n          - source: p\n")
    check(config)
    site.page("/p", html('<div id="terms"></div><p>Retention is 30 days.</p>'))
    assert check(config).sources[0].status == "selector_missing"
    assert [f["reason"] for f in store.open_flags()] == ["selector_missing"]


def test_an_unchanged_page_is_revalidated_with_its_etag(policy, site, check, store):
    site.page("/policy", POLICY_V1, etag=True)
    check(policy)
    summary = check(policy)
    assert summary.sources[0].outcome == "not_modified"
    assert summary.sources[0].status == "unchanged"
    assert site.requests[-1].headers.get("If-None-Match")
    site.page("/policy", POLICY_V1.replace("30 days", "45 days"), etag=True)
    check(policy)
    assert ("acme/retention", "quote_changed") in open_flags(store)


def test_last_modified_is_sent_back(site, make_config, check):
    stamp = "Wed, 21 Oct 2026 07:28:00 GMT"
    site.page("/p", html("<p>x</p>"), headers={"Last-Modified": stamp})
    config = make_config(f"sources:\n  p:\n    url: {site.url('/p')}\n")
    check(config)
    check(config)
    assert site.requests[-1].headers.get("If-Modified-Since") == stamp


def test_the_user_agent_is_the_configured_one(site, write_config, store):
    from watcher.config import load_config

    site.page("/p", html("<p>x</p>"))
    config = load_config(write_config(f"""
settings:
  user_agent: "watcher-test/1.0 (+https://example.org/about)"
  host_delay: 0s
sources:
  p:
    url: {site.url('/p')}
"""))
    run_check(config, store, ["p"])
    assert site.requests[0].headers["User-Agent"] == "watcher-test/1.0 (+https://example.org/about)"


def test_a_body_over_the_size_cap_is_a_failure(site, make_config, check, store):
    site.page("/p", html("<p>" + "x" * 5000 + "</p>"))
    config = make_config(f"""
settings:
  max_size: 1KB
  host_delay: 0s
sources:
  p:
    url: {site.url('/p')}
""")
    summary = check(config)
    assert summary.sources[0].outcome == "too_large"
    assert store.latest_version("p") is None


def test_a_review_falls_due_once(site, make_config, check, store):
    site.page("/p", html("<p>x</p>"))
    config = make_config(f"""
sources:
  p:
    url: {site.url('/p')}
offerings:
  o:
    records:
      old:
        verified: 2020-01-01
        review_every: 365d
        cites: [p]
      fresh:
        verified: 2099-01-01
        review_every: 365d
        cites: [p]
""")
    clock = Clock()
    check(config, clock=clock)
    assert [(f["record_id"], f["reason"]) for f in store.open_flags()] == [("o/old", "review_due")]
    check(config, clock=clock)
    assert len(store.open_flags()) == 1
    store.add_review("o/old", "tester", None, clock())
    check(config, clock=clock)
    assert store.open_flags() == []
    clock.now += timedelta(days=366)
    check(config, clock=clock)
    assert [(f["record_id"], f["reason"]) for f in store.open_flags()] == [("o/old", "review_due")]


def test_due_sources_come_from_the_database(site, make_config, check, store):
    site.page("/a", html("<p>a</p>"))
    site.page("/b", html("<p>b</p>"))
    config = make_config(f"""
sources:
  hourly:
    url: {site.url('/a')}
    every: 1h
  daily:
    url: {site.url('/b')}
    every: 1d
""")
    clock = Clock()
    assert sorted(due_sources(config, store, clock())) == ["daily", "hourly"]
    check(config, clock=clock)
    assert due_sources(config, store, clock()) == []
    assert due_sources(config, store, clock() + timedelta(hours=2)) == ["hourly"]
    assert sorted(due_sources(config, store, clock() + timedelta(days=2))) == ["daily", "hourly"]


def test_two_sources_on_one_page_share_one_fetch_and_flag_separately(site, make_config, check, store):
    page = html('<section id="certs"><p>We are SOC 2 Type II audited.</p></section>'
                '<section id="subs"><ul><li>Google Cloud</li></ul></section>')
    site.page("/trust", page)
    config = make_config(f"""
sources:
  trust:
    url: {site.url('/trust')}
    select: "#certs"
  subprocessors:
    url: {site.url('/trust')}
    select: "#subs"
offerings:
  o:
    records:
      soc2:
        cites:
          - source: trust
            quote: We are SOC 2 Type II audited.
      subs:
        cites: [subprocessors]
""")
    check(config)
    assert site.hits("/trust") == 1
    site.page("/trust", page.replace("<li>Google Cloud</li>", "<li>Google Cloud</li><li>Oracle</li>"))
    check(config)
    assert open_flags(store) == {("o/subs", "content_changed")}


def test_editing_a_selector_flags_nothing_by_itself(site, make_config, check, store):
    page = html('<div id="a"><p>Retention is 30 days.</p></div><div id="b"><p>Other terms.</p></div>')
    site.page("/p", page)
    base = f"""
sources:
  p:
    url: {site.url('/p')}
    select: {{select}}
offerings:
  o:
    records:
      r:
        cites: [p]
"""
    check(make_config(base.format(select='"#a"')))
    check(make_config(base.format(select='["#a", "#b"]')))
    assert store.open_flags() == []
    kinds = [row["kind"] for row in store.rows("SELECT kind FROM changes")]
    assert kinds == ["technical"]


def test_a_selector_that_matches_again_clears_the_drift(site, make_config, check, store):
    good = html('<div id="terms"><p>Retention is 30 days.</p></div>')
    site.page("/p", good)
    config = make_config(f"sources:\n  p:\n    url: {site.url('/p')}\n    select: '#terms'\n")
    check(config)
    site.page("/p", html("<p>Redesign</p>"))
    check(config)
    assert store.source_state("p").selector_missing_since is not None
    site.page("/p", good)
    assert check(config).sources[0].status == "unchanged"
    assert store.source_state("p").selector_missing_since is None


def test_a_page_without_text_is_a_failed_check(site, make_config, check, store):
    site.page("/p", html("<p>Retention is 30 days.</p>"))
    config = make_config(f"sources:\n  p:\n    url: {site.url('/p')}\n")
    check(config)
    site.page("/p", "<html><body><script>app()</script></body></html>")
    summary = check(config)
    assert (summary.sources[0].status, summary.sources[0].outcome) == ("failed", "empty")
    assert store.fetch_history("p")[0]["outcome"] == "empty"
    assert store.latest_version("p").seq == 1
