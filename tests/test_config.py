"""sources.yaml validation: every error is one line naming the file, the line and the key."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import cli
from watcher.config import Settings, load_config, parse_config, parse_duration, parse_size
from watcher.errors import ConfigError

VALID = """\
settings:
  user_agent: "watcher-test (+https://example.org)"
  concurrency: 4
  per_host: 1
  host_delay: 0s
  timeout: 10s
sources:
  trust:
    url: https://example.org/trust
    select: main
    remove: [".cookie-banner", "#promo"]
    every: 12h
  docs:
    url: http://docs.example.org/retention
offerings:
  acme:
    name: Acme API
    records:
      soc2:
        question: Is a SOC 2 Type II report available?
        status: Yes, sales-gated
        verified: 2026-07-05
        review_every: 365d
        cites:
          - source: trust
            quote: "Acme undergoes an annual SOC 2 Type II audit"
          - source: docs
            watch_for: ["BAA"]
      plain:
        cites: [docs]
"""


def test_a_valid_file_loads_into_frozen_dataclasses():
    config = parse_config(VALID, "sources.yaml")
    assert config.settings.per_host == 1
    assert config.settings.host_delay == 0
    assert config.sources["trust"].select == ("main",)
    assert config.sources["trust"].remove == (".cookie-banner", "#promo")
    assert config.sources["trust"].every == 12 * 3600
    assert config.sources["docs"].every == 86400
    record = config.records["acme/soc2"]
    assert record.verified == date(2026, 7, 5)
    assert record.review_every == 365 * 86400
    assert record.cites[1].watch_for == ("BAA",)
    assert config.records["acme/plain"].cites[0].quote is None
    assert [r.id for r, _ in config.cites_of("docs")] == ["acme/soc2", "acme/plain"]
    with pytest.raises(AttributeError):
        record.status = "No"  # type: ignore[misc]


def test_settings_default_to_a_polite_crawler():
    config = parse_config("sources:\n  a:\n    url: https://example.org/\n")
    assert config.settings == Settings()
    assert config.settings.per_host == 2 and config.settings.host_delay == 1.0


def test_the_repository_config_is_valid():
    config = load_config(Path(__file__).parent.parent / "sources.yaml")
    assert "cohere-api" in config.offerings
    assert len(config.records) >= 10


@pytest.mark.parametrize(
    ("text", "duration"),
    [("30s", 30), ("5m", 300), ("12h", 43200), ("1d", 86400), ("2w", 1209600), ("1h30m", 5400), ("0s", 0), ("1.5h", 5400)],
)
def test_durations(text, duration):
    assert parse_duration(text) == duration


@pytest.mark.parametrize("text", ["", "12", "h", "12 hours", "1y", "-1h", "1h junk"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_sizes():
    assert parse_size("10MB") == 10_000_000
    assert parse_size("512KiB") == 524288
    assert parse_size("1000") == 1000


def _edit(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


# (what is wrong, file text, expected line, expected key path, words in the message)
BAD_CONFIGS = [
    ("unknown key in a source", _edit("    every: 12h\n", "    every: 12h\n    selector: main\n"),
     13, "sources.trust.selector", "unknown key"),
    ("unknown top-level section", VALID + "extras: 1\n", 31, "extras", "unknown key"),
    ("unknown settings key", _edit("  per_host: 1\n", "  per_hosts: 1\n"), 4, "settings.per_hosts", "unknown key"),
    ("missing url", _edit("    url: http://docs.example.org/retention\n", "    every: 1d\n"),
     14, "sources.docs.url", "missing required key"),
    ("url without a scheme", _edit("https://example.org/trust", "example.org/trust"), 9, "sources.trust.url", "http"),
    ("ftp url", _edit("https://example.org/trust", "ftp://example.org/trust"), 9, "sources.trust.url", "http"),
    ("cite of an unknown source", _edit("          - source: trust\n", "          - source: trsut\n"),
     25, "offerings.acme.records.soc2.cites[0].source", "unknown source 'trsut'"),
    ("short cite of an unknown source", _edit("cites: [docs]", "cites: [nope]"),
     30, "offerings.acme.records.plain.cites[0].source", "unknown source"),
    ("bad interval", _edit("every: 12h", "every: twelve hours"), 12, "sources.trust.every", "bad duration"),
    ("interval of zero", _edit("every: 12h", "every: 0s"), 12, "sources.trust.every", "longer than 0s"),
    ("bad review interval", _edit("review_every: 365d", "review_every: 1 year"),
     23, "offerings.acme.records.soc2.review_every", "bad duration"),
    ("bad date", _edit("verified: 2026-07-05", "verified: 2026-13-45"),
     22, "offerings.acme.records.soc2.verified", "bad date"),
    ("date in the wrong format", _edit("verified: 2026-07-05", "verified: 05/07/2026"),
     22, "offerings.acme.records.soc2.verified", "YYYY-MM-DD"),
    ("duplicate source id", _edit("  docs:\n", "  trust:\n"), 13, "sources.trust", "duplicate key"),
    ("duplicate record id", _edit("      plain:\n", "      soc2:\n"), 29, "offerings.acme.records.soc2", "duplicate key"),
    ("invalid YAML", _edit("    select: main\n", "    select: [main\n"), 11, "sources.trust.select", "invalid YAML"),
    ("bad CSS selector", _edit("select: main", 'select: "main["'), 10, "sources.trust.select", "invalid CSS selector"),
    ("bad remove selector", _edit('"#promo"', '"##promo"'), 11, "sources.trust.remove", "invalid CSS selector"),
    ("concurrency not a number", _edit("concurrency: 4", "concurrency: many"), 3, "settings.concurrency", "whole number"),
    ("concurrency of zero", _edit("concurrency: 4", "concurrency: 0"), 3, "settings.concurrency", "at least 1"),
    ("cites not a list", _edit("cites: [docs]", "cites: docs"), 30, "offerings.acme.records.plain.cites", "list"),
    ("empty cites", _edit("cites: [docs]", "cites: []"), 30, "offerings.acme.records.plain.cites", "non-empty"),
    ("record without cites", _edit("        cites: [docs]\n", "        status: unknown\n"),
     30, "offerings.acme.records.plain.cites", "missing required key"),
    ("empty quote", _edit('quote: "Acme undergoes an annual SOC 2 Type II audit"', 'quote: ""'),
     26, "offerings.acme.records.soc2.cites[0].quote", "must not be empty"),
    ("source id with a slash", _edit("  docs:\n", "  docs/v2:\n"), 13, "sources.docs/v2", "bad source id"),
    ("source that is a string", _edit("  docs:\n    url: http://docs.example.org/retention\n", "  docs: http://x.org\n"),
     13, "sources.docs", "expected a mapping"),
    ("YAML alias", VALID.replace("  docs:\n    url: http://docs.example.org/retention\n",
                                 "  docs: &d\n    url: http://docs.example.org/retention\n  copy: *d\n"),
     15, "sources.copy", "aliases"),
    ("url that is a number", _edit("url: https://example.org/trust", "url: 12345"), 9, "sources.trust.url", "http"),
    ("url with spaces", _edit("https://example.org/trust", "https://exa mple.org/trust"), 9, "sources.trust.url",
     "spaces"),
    ("url with a password", _edit("https://example.org/trust", "https://bot:hunter2@example.org/trust"),
     9, "sources.trust.url", "user name or password"),
    ("url with a bad port", _edit("https://example.org/trust", "https://example.org:99999/trust"),
     9, "sources.trust.url", "bad port"),
    ("url without a host", _edit("https://example.org/trust", "https:///trust"), 9, "sources.trust.url", "no host"),
    ("url that would run code", _edit("url: https://example.org/trust", 'url: !!python/object/apply:os.system ["true"]'),
     9, "sources.trust.url", "expected a string"),
    ("select that is a mapping", _edit("select: main", "select: {main: 1}"), 10, "sources.trust.select",
     "expected a string"),
    ("every that is a list", _edit("every: 12h", "every: [12h]"), 12, "sources.trust.every", "expected a string"),
    ("timeout that is no duration", _edit("timeout: 10s", "timeout: fast"), 6, "settings.timeout", "bad duration"),
    ("negative per_host", _edit("per_host: 1", "per_host: -1"), 4, "settings.per_host", "at least 1"),
    ("max_size that is no size", _edit("  timeout: 10s\n", "  timeout: 10s\n  max_size: huge\n"),
     7, "settings.max_size", "bad size"),
    ("user agent without a contact", _edit('"watcher-test (+https://example.org)"', "watcher"),
     2, "settings.user_agent", "contact URL"),
    ("verify_tls that is no boolean", _edit("    every: 12h\n", "    every: 12h\n    verify_tls: maybe\n"),
     13, "sources.trust.verify_tls", "true or false"),
    ("a secret where a variable name belongs", _edit(
        "    every: 12h\n", "    every: 12h\n    credentials:\n      headers:\n        Authorization: Bearer sk-123\n"),
     15, "sources.trust.credentials.headers.Authorization", "environment variable"),
    ("credentials with an unknown key", _edit("    every: 12h\n", "    every: 12h\n    credentials:\n      token: T\n"),
     14, "sources.trust.credentials.token", "unknown key"),
    ("a header name with a space", _edit(
        "    every: 12h\n", "    every: 12h\n    credentials:\n      headers:\n        Api Key: API_KEY\n"),
     15, "sources.trust.credentials.headers.Api Key", "bad header name"),
    ("the same part of the same page twice", _edit(
        "  docs:\n    url: http://docs.example.org/retention\n",
        '  docs:\n    url: https://example.org/trust\n    select: main\n    remove: [".cookie-banner", "#promo"]\n'),
     13, "sources.docs", "same part of the same page as sources.trust (line 8)"),
    ("one page fetched two ways", _edit(
        "  docs:\n    url: http://docs.example.org/retention\n",
        "  docs:\n    url: https://example.org/trust\n    verify_tls: false\n"),
     13, "sources.docs", "shares its url with sources.trust"),
    ("a cite listed twice", _edit("cites: [docs]", "cites: [docs, docs]"), 30, "offerings.acme.records.plain.cites[1]",
     "duplicate cite"),
    ("watch_for that is a mapping", _edit('watch_for: ["BAA"]', "watch_for: {BAA: 1}"),
     28, "offerings.acme.records.soc2.cites[1].watch_for", "expected a string"),
    ("quote that is a list", _edit('quote: "Acme undergoes an annual SOC 2 Type II audit"', "quote: [a, b]"),
     26, "offerings.acme.records.soc2.cites[0].quote", "expected a string"),
    ("unknown key in a cite", _edit("            watch_for:", "            watch_fro:"),
     28, "offerings.acme.records.soc2.cites[1].watch_fro", "unknown key"),
    ("record id with a space", _edit("      plain:\n", "      plain text:\n"), 29, "offerings.acme.records.plain text",
     "bad record id"),
    ("review interval of zero", _edit("review_every: 365d", "review_every: 0s"),
     23, "offerings.acme.records.soc2.review_every", "longer than 0s"),
    ("tab indentation", _edit("  docs:\n", "\tdocs:\n"), 13, "sources.trust.every", "invalid YAML"),
    ("nesting bomb", _edit("select: main", "select: " + "[" * 40 + "main" + "]" * 40), 10, "sources.trust.select",
     "nesting deeper"),
    ("sources that are a list", "sources:\n  - https://example.org/\n", 2, "sources", "expected a mapping"),
    ("no sources at all", "sources: {}\n", 1, "sources", "at least one source"),
    ("an offering without records", _edit("    name: Acme API\n", "    name: Acme API\n    records: {}\n").replace(
        "    records:\n      soc2:", "    more:\n      soc2:", 1), 18, "offerings.acme.records", "at least one record"),
    ("a size cap of nothing", _edit("  timeout: 10s\n", "  timeout: 10s\n  max_size: 0\n"), 7, "settings.max_size",
     "more than 0 bytes"),
    ("a file that is a list", "- sources\n- offerings\n", 1, "sources", "must be a mapping"),
    ("a file that is one word", "sources\n", 1, "sources", "must be a mapping"),
    ("billion laughs", 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
     2, "b", "aliases"),
]


@pytest.mark.parametrize(("text", "line", "key", "words"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_configs_name_file_line_and_key(text, line, key, words):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "conf/sources.yaml")
    error = caught.value
    assert (error.path, error.line, error.key) == ("conf/sources.yaml", line, key), str(error)
    assert words in str(error)
    assert str(error).startswith(f"conf/sources.yaml:{line}: {key}:")
    assert "\n" not in str(error)


HUGE = "sources:\n" + "".join(f"  s{i}:\n    url: https://example.org/{i}\n" for i in range(120_000))
# (what is wrong, file bytes, expected line or None for "any", expected key, words in the message)
BAD_FILES = [
    ("an empty file", b"", 1, "sources", "the file is empty"),
    ("only comments", b"# nothing yet\n", 1, "sources", "the file is empty"),
    ("not UTF-8", b"sources:\n  a:\n    url: https://example.org/\xff\n", 3, "sources.a.url", "not valid UTF-8"),
    ("binary bytes", b"sources:\n  a:\x00\x01\x02\n", 2, "sources", "not allowed"),
    ("a huge file", HUGE.encode(), None, "sources.", "over the"),
]


@pytest.mark.parametrize(("data", "line", "key", "words"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_files_name_file_line_and_key_and_never_touch_the_database(tmp_path, data, line, key, words):
    path = tmp_path / "sources.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert error.line is not None and (line is None or error.line == line), str(error)
    assert error.key.startswith(key), str(error)
    assert words in str(error) and "\n" not in str(error)
    db = tmp_path / "watcher.db"
    result = CliRunner().invoke(cli, ["--config", str(path), "--db", str(db), "check"])
    assert result.exit_code == 2 and str(error) in result.output
    assert not db.exists()


def test_every_bad_config_is_refused_before_the_database_is_touched(tmp_path):
    db = tmp_path / "watcher.db"
    path = tmp_path / "sources.yaml"
    for name, text, line, key, _ in BAD_CONFIGS:
        path.write_text(text)
        result = CliRunner().invoke(cli, ["--config", str(path), "--db", str(db), "check"])
        assert result.exit_code == 2, name
        assert result.output.startswith(f"watcher: error: {path}:{line}: {key}:"), (name, result.output)
        assert not db.exists(), name


def test_an_empty_file_is_an_error(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(path)


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.yaml")


def test_a_file_that_is_not_utf8_is_an_error(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_bytes(b"sources:\n  a:\n    url: https://example.org/\xff\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 3


def test_config_errors_exit_2_and_never_create_the_database(tmp_path):
    config = tmp_path / "sources.yaml"
    config.write_text(_edit("every: 12h", "every: soon"))
    db = tmp_path / "watcher.db"
    for command in (["check"], ["validate"], ["flags"], ["report"]):
        result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(db), *command])
        assert result.exit_code == 2, (command, result.output)
        assert f"{config}:12: sources.trust.every:" in result.output
        assert "Traceback" not in result.output
    assert not db.exists()


def test_validate_reports_a_summary(tmp_path):
    config = tmp_path / "sources.yaml"
    config.write_text(VALID)
    result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(tmp_path / "w.db"), "validate"])
    assert result.exit_code == 0
    assert "ok (2 source(s), 1 offering(s), 2 record(s), 3 cite(s))" in result.output
    assert not (tmp_path / "w.db").exists()


def test_key_path_of_a_syntax_error_points_at_the_enclosing_keys():
    text = textwrap.dedent(
        """\
        sources:
          a:
            url: https://example.org/
            select: "main
        """
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.key.startswith("sources.a")
