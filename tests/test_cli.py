"""The command line end to end: real server, real database, exit codes and output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import html
from watcher.cli import cli

PAGES = {
    "/trust": html("<h1>Trust</h1><p>Acme undergoes an annual SOC 2 Type II audit.</p>"
                   "<h2>Subprocessors</h2><ul><li>Google Cloud</li></ul>"),
    "/retention": html("<p>We delete prompts after 30 days.</p><p>Contact privacy@example.org.</p>"),
}
CONFIG = """
sources:
  trust:
    url: {trust}
  retention:
    url: {retention}
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
        status: No public evidence
        cites:
          - source: trust
            watch_for: [BAA]
"""


@pytest.fixture
def run(site, write_config, db_path):
    for path, body in PAGES.items():
        site.page(path, body)
    config = write_config(CONFIG.format(trust=site.url("/trust"), retention=site.url("/retention")))

    def invoke(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(db_path), *args])
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_two_runs_with_an_edit_flag_the_right_records_and_no_others(run, site):
    first = run("check")
    assert "checked 2 source(s)" in first and "0 flag(s) raised" in first
    site.page("/retention", PAGES["/retention"].replace("30 days", "14 days"))
    site.page("/trust", PAGES["/trust"].replace("Google Cloud", "Google Cloud</li><li>Oracle"))
    second = run("check", "--all")
    assert "1 flag(s) raised" in second

    flags = json.loads(run("flags", "--json"))
    assert [(f["record"], f["reason"], f["source"]) for f in flags] == [("acme/retention", "quote_changed", "retention")]
    flag = flags[0]
    assert flag["old"] == "We delete prompts after 30 days."
    assert flag["new"] == "We delete prompts after 14 days."
    assert flag["url"] == site.url("/retention")
    assert flag["final_url"] == site.url("/retention")
    assert flag["detected_at"].endswith("Z")

    report = run("report")
    assert "acme/retention: Is retention documented?" in report
    assert "[-30-]{+14+}" in report
    assert "acme/soc2" not in report
    assert "Changes that affected no record" in report and "Oracle" in report


def test_check_only_fetches_what_is_due(run, site):
    run("check")
    output = run("check")
    assert "checked 0 source(s)" in output
    assert site.hits("/trust") == 1


def test_recheck_accepts_source_record_and_offering_ids(run, site):
    run("check")
    run("recheck", "trust")
    assert site.hits("/trust") == 2 and site.hits("/retention") == 1
    run("recheck", "acme/retention")
    assert site.hits("/retention") == 2
    run("recheck", "acme")
    assert site.hits("/trust") == 3 and site.hits("/retention") == 3
    output = run("recheck", "nope", code=2)
    assert "unknown id 'nope'" in output


def test_verify_closes_flags_and_logs_who(run, site, db_path):
    run("check")
    site.page("/retention", PAGES["/retention"].replace("30 days", "14 days"))
    run("check", "--all")
    output = run("verify", "acme/retention", "--by", "alice", "--note", "14 days confirmed")
    assert "1 flag(s) closed" in output
    assert "We delete prompts after 14 days." in output
    assert json.loads(run("flags", "--json")) == []
    assert "no open flags" in run("flags")
    assert "unknown record id" in run("verify", "acme/nope", "--by", "alice", code=2)


def test_report_formats(run, site, tmp_path):
    run("check")
    site.page("/trust", PAGES["/trust"].replace("</ul>", "</ul><p>We sign a BAA on request.</p>"))
    run("check", "--all")
    data = json.loads(run("report", "--format", "json"))
    [offering] = data["offerings"]
    assert offering["offering"] == "acme"
    assert offering["records"][0]["flags"][0]["reason"] == "watch_term"
    markdown = run("report", "--format", "markdown")
    assert markdown.startswith("# watcher report")
    assert "### `acme/baa`" in markdown
    target = tmp_path / "report.md"
    run("report", "--format", "markdown", "--output", str(target))
    assert target.read_text().startswith("# watcher report")
    assert "watch_term" in run("report", "--since", "2000-01-01")
    assert "expected a date" in run("report", "--since", "last tuesday", code=2)


def test_history_and_diff(run, site):
    run("check")
    site.page("/retention", PAGES["/retention"].replace("30 days", "14 days"))
    run("check", "--all")
    site.page("/retention", "down", status=503)
    run("check", "--all")
    history = run("history", "retention")
    assert "2 text version(s)" in history
    assert re.search(r"server_error\s+HTTP 503", history)
    assert "-> v2" in history
    diff = run("diff", "retention")
    assert "[-30-]{+14+}" in diff
    assert "[-30-]{+14+}" in run("diff", "retention", "--from", "1", "--to", "2")
    assert "there is no version 7" in run("diff", "retention", "--to", "7", code=2)
    assert "unknown source" in run("history", "nope", code=2)


def test_unexpected_errors_are_one_line_without_a_traceback(run, db_path):
    db_path.write_bytes(b"this is not a database" * 100)
    output = run("flags", code=1)
    assert output.startswith("watcher: error:")
    assert "Traceback" not in output


def test_a_run_with_failures_still_exits_0(run, site):
    site.page("/trust", "down", status=500)
    output = run("check")
    assert "1 failed" in output


def test_every_command_has_an_example_in_its_help():
    runner = CliRunner()
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.output, name


def test_every_command_is_documented_in_the_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in cli.commands:
        assert f"watcher {name}" in readme, name


def test_the_ci_script_runs_the_readme_test_command():
    root = Path(__file__).parent.parent
    readme = root.joinpath("README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", quick_start, re.DOTALL)
    assert len(commands) == 2
    test_command = commands[1].strip()
    assert test_command in root.joinpath(".ci/run").read_text()


def test_the_demo_runs_offline_and_shows_flagged_records(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--keep", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "quote_changed" in out and "[-30-]{+60+}" in out
    assert "context_changed" in out and "watch_term" in out
    assert "cohere-api/soc2-type2" in out
    assert "Changes that affected no record" in out
    assert (tmp_path / "demo" / "watcher.db").exists()
