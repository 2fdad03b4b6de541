"""Digests over a real SMTP server (aiosmtpd) and a real HTTP receiver, both on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import ssl
from email import policy

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from werkzeug import Request, Response

from conftest import html
from watcher.check import run_check
from watcher.cli import cli
from watcher.config import load_config
from watcher.errors import ConfigError
from watcher.notify import DIGEST_SCHEMA, SLACK_TEXT_LIMIT, Digest, notify_pending, slack_text
from watcher.store import utc_now

POLICY = html("<p>We delete prompts after 30 days.</p><p>Contact privacy@example.org.</p>")
RECORDS = """
sources:
  policy:
    url: {url}
offerings:
  acme:
    name: Acme API
    records:
      retention:
        question: How long are prompts kept?
        status: 30 days
        cites:
          - source: policy
            quote: We delete prompts after 30 days.
"""


class Inbox:
    """An aiosmtpd handler that keeps what it receives and who logged in."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's naming)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, data) -> AuthResult:
        login = [value.decode() if isinstance(value, bytes) else value for value in (data.login, data.password)]
        self.logins.append(tuple(login))
        return AuthResult(success=login == ["watcher", "s3cret"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    """Start a real SMTP server on 127.0.0.1: ``start(tls_context=...)`` returns (inbox, port)."""
    controllers = []

    def start(**options):
        inbox = Inbox()
        port = _free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                                auth_require_tls=False, **options)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


class Receiver:
    """A webhook receiver on the test site: answers with the statuses given, then 200."""

    def __init__(self, site, statuses=()) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.statuses = list(statuses)
        site.handler("/hooks/secret-path", self.handle)
        self.url = site.url("/hooks/secret-path")

    def handle(self, request: Request) -> Response:
        self.bodies.append(json.loads(request.get_data()))
        self.headers.append(dict(request.headers))
        return Response("ok", status=self.statuses.pop(0) if self.statuses else 200)


def notify(config, store, run_id=None):
    return asyncio.run(notify_pending(config, store, utc_now(), run_id))


@pytest.fixture
def policy_site(site):
    site.page("/policy", POLICY)
    return site


def test_an_email_digest_is_multipart_and_announces_each_flag_once(policy_site, write_config, store, smtp_server,
                                                                   monkeypatch):
    inbox, port = smtp_server()
    monkeypatch.setenv("TEST_SMTP_USER", "watcher")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    config = load_config(write_config(RECORDS.format(url=policy_site.url("/policy")) + f"""
notify:
  email:
    host: 127.0.0.1
    port: {port}
    tls: none
    username_env: TEST_SMTP_USER
    password_env: TEST_SMTP_PASSWORD
    from: watcher@example.org
    to: [editors@example.org, "Bob <bob@example.org>"]
"""))
    first = run_check(config, store, ["policy"])
    assert notify(config, store, first.run_id) == []  # nothing to tell: no message
    policy_site.page("/policy", POLICY.replace("30 days", "14 days"))
    second = run_check(config, store, ["policy"])

    [delivery] = notify(config, store, second.run_id)
    assert delivery.sent and delivery.channel == "email"
    assert inbox.logins == [("watcher", "s3cret")]  # the credentials came from the environment
    [message] = inbox.messages
    assert message["Subject"] == "[watcher] 1 record(s) to re-verify"
    assert message["To"] == "editors@example.org, Bob <bob@example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    body_html = message.get_body(("html",)).get_content()
    assert "acme/retention: How long are prompts kept?" in text
    assert "quote_changed" in text and "[-30-]{+14+}" in text
    assert "<del>30</del><ins>14</ins>" in body_html and "acme/retention" in body_html

    assert notify(config, store, second.run_id) == []  # announced once
    assert len(inbox.messages) == 1
    assert store.rows("SELECT channel, status, flags FROM notifications") == [
        {"channel": "email", "status": "sent", "flags": 1}]


def test_starttls_is_required_before_credentials_are_sent(policy_site, write_config, store, smtp_server,
                                                          monkeypatch, tmp_path):
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("TEST_SMTP_USER", "watcher")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    tls_inbox, tls_port = smtp_server(tls_context=server_context, require_starttls=True)
    plain_inbox, plain_port = smtp_server()
    text = RECORDS.format(url=policy_site.url("/policy")) + """
notify:
  email:
    host: 127.0.0.1
    port: {port}
    username_env: TEST_SMTP_USER
    password_env: TEST_SMTP_PASSWORD
    from: watcher@example.org
    to: editors@example.org
    retries: 0
"""
    policy_site.page("/policy", POLICY.replace("30 days", "14 days"))  # a wrong quote from the start: one flag
    config = load_config(write_config(text.format(port=plain_port)))
    run = run_check(config, store, ["policy"])
    [refused] = notify(config, store, run.run_id)
    assert not refused.sent
    assert "does not offer STARTTLS" in refused.error
    assert plain_inbox.logins == [] and plain_inbox.messages == []  # nothing went out in clear text

    config = load_config(write_config(text.format(port=tls_port)))
    [delivery] = notify(config, store, run.run_id)  # the undelivered flag is announced by the next digest
    assert delivery.sent, delivery.error
    assert tls_inbox.logins == [("watcher", "s3cret")]
    assert len(tls_inbox.messages) == 1


def test_a_webhook_gets_the_documented_schema_with_retries(policy_site, write_config, store, monkeypatch):
    receiver = Receiver(policy_site, statuses=[503])
    monkeypatch.setenv("TEST_HOOK_URL", receiver.url)
    monkeypatch.setenv("TEST_HOOK_TOKEN", "t0ken")
    config = load_config(write_config(RECORDS.format(url=policy_site.url("/policy")) + """
notify:
  webhook:
    url_env: TEST_HOOK_URL
    token_env: TEST_HOOK_TOKEN
    retries: 2
    backoff: 0s
"""))
    run_check(config, store, ["policy"])
    policy_site.page("/policy", POLICY.replace("30 days", "14 days"))
    run = run_check(config, store, ["policy"])
    [delivery] = notify(config, store, run.run_id)

    assert delivery.sent and delivery.attempts == 2  # a 503, then accepted
    assert delivery.target == policy_site.url("").rstrip("/")  # the secret path is never stored
    assert receiver.headers[-1]["Authorization"] == "Bearer t0ken"
    body = receiver.bodies[-1]
    assert set(body) == {"schema", "kind", "subject", "text", "generated_at", "run", "records_flagged", "flags",
                         "open_flags", "sources_failing", "sources_recovered"}
    assert body["schema"] == DIGEST_SCHEMA and body["kind"] == "digest"
    assert body["run"]["id"] == run.run_id and body["run"]["flags_raised"] == 1
    assert body["text"].startswith("*[watcher] 1 record(s) to re-verify*")
    assert "acme/retention: quote_changed (policy)" in body["text"]
    [flag] = body["flags"]
    assert (flag["record"], flag["reason"], flag["old"], flag["new"]) == (
        "acme/retention", "quote_changed", "We delete prompts after 30 days.", "We delete prompts after 14 days.")
    assert store.row("SELECT target FROM notifications")["target"] == delivery.target


def test_failing_and_recovered_sources_are_announced_once_each(policy_site, write_config, store):
    receiver = Receiver(policy_site)
    config = load_config(write_config(RECORDS.format(url=policy_site.url("/policy")) + f"""
notify:
  webhook:
    url: {receiver.url}
"""))
    run_check(config, store, ["policy"])
    policy_site.page("/policy", "down for maintenance", status=503)
    announced = []
    for _ in range(5):  # the third failure in a row makes the source failing; later ones repeat nothing
        run = run_check(config, store, ["policy"])
        announced.append(len(notify(config, store, run.run_id)))
    assert announced == [0, 0, 1, 0, 0]
    [failing] = receiver.bodies
    assert [s["source"] for s in failing["sources_failing"]] == ["policy"]
    assert failing["sources_failing"][0]["outcome"] == "server_error"
    assert [f["reason"] for f in failing["flags"]] == ["source_error"]
    assert "started failing: policy (server_error: HTTP 503)" in failing["text"]

    policy_site.page("/policy", POLICY)
    announced = [len(notify(config, store, run_check(config, store, ["policy"]).run_id)) for _ in range(2)]
    assert announced == [1, 0]
    recovered = receiver.bodies[-1]
    assert [s["source"] for s in recovered["sources_recovered"]] == ["policy"]
    assert recovered["sources_failing"] == [] and recovered["flags"] == []


def test_a_digest_no_channel_delivered_is_sent_again_with_the_next_run(policy_site, write_config, store):
    receiver = Receiver(policy_site, statuses=[500, 500])
    config = load_config(write_config(RECORDS.format(url=policy_site.url("/policy")) + f"""
notify:
  webhook:
    url: {receiver.url}
    retries: 1
    backoff: 0s
  email:
    host: 127.0.0.1
    port: {_free_port()}
    tls: none
    from: watcher@example.org
    to: editors@example.org
    retries: 0
    username_env: TEST_UNSET_USER
    password_env: TEST_UNSET_PASSWORD
"""))
    policy_site.page("/policy", POLICY.replace("30 days", "14 days"))
    run = run_check(config, store, ["policy"])
    email_delivery, webhook_delivery = notify(config, store, run.run_id)
    assert not email_delivery.sent and email_delivery.attempts == 0
    assert email_delivery.error == "the environment variable TEST_UNSET_USER is not set"
    assert not webhook_delivery.sent and webhook_delivery.error == "HTTP 500" and webhook_delivery.attempts == 2

    later = run_check(config, store, ["policy"])  # nothing new, but the flag was never announced
    deliveries = notify(config, store, later.run_id)
    assert [d.sent for d in deliveries] == [False, True]
    assert [f["record"] for f in receiver.bodies[-1]["flags"]] == ["acme/retention"]
    assert notify(config, store, later.run_id) == []


def test_notify_test_sends_a_sample_digest(policy_site, write_config, db_path):
    receiver = Receiver(policy_site)
    plain = write_config(RECORDS.format(url=policy_site.url("/policy")))
    base = ["--config", str(plain), "--db", str(db_path)]
    result = CliRunner().invoke(cli, [*base, "notify", "--test"])
    assert result.exit_code == 2 and "no notify: section" in result.output
    plain.write_text(plain.read_text() + f"notify:\n  webhook:\n    url: {receiver.url}\n")
    assert CliRunner().invoke(cli, [*base, "notify"]).exit_code == 2

    result = CliRunner().invoke(cli, [*base, "notify", "--test"])
    assert result.exit_code == 0, result.output
    assert result.output == f"webhook to {policy_site.url('').rstrip('/')}: sent\n"
    [body] = receiver.bodies
    assert body["kind"] == "test" and body["subject"].startswith("[watcher] test digest:")

    receiver.statuses = [404]
    result = CliRunner().invoke(cli, [*base, "notify", "--test"])
    assert result.exit_code == 1 and "FAILED after 1 attempt(s): HTTP 404" in result.output


@pytest.mark.parametrize(
    "section, line, key, words",
    [
        ("  email:\n    host: h\n    from: a@example.org\n    to: b@example.org\n    password: hunter2\n",
         9, "notify.email.password", "secrets are not read from"),
        ("  email:\n    host: h\n    from: a@example.org\n    to: nobody\n", 8, "notify.email.to", "bad email address"),
        ("  email:\n    host: h\n    from: a@example.org\n    to: b@example.org\n    tls: yes please\n",
         9, "notify.email.tls", "expected one of: starttls, ssl, none"),
        ("  email:\n    host: h\n    from: a@example.org\n    to: b@example.org\n    username_env: U\n",
         9, "notify.email.password_env", "go together"),
        ("  webhook:\n    url: https://example.org/h\n    url_env: HOOK\n", 7, "notify.webhook.url", "exactly one"),
        ("  webhook:\n    url_env: hook url\n", 6, "notify.webhook.url_env", "bad environment variable name"),
        ("  pager:\n    number: 1\n", 5, "notify.pager", "unknown key"),
    ],
)
def test_bad_notify_sections_name_file_line_and_key(tmp_path, section, line, key, words):
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  a:\n    url: https://example.org/\nnotify:\n" + section)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == line and caught.value.key == key
    assert words in caught.value.message


def test_a_scheduled_run_sends_one_digest_for_all_its_pages(site, write_config, db_path):
    receiver = Receiver(site)
    site.page("/one", html("<p>Page one.</p>"))
    site.page("/two", html("<p>Page two.</p>"))
    config = write_config(f"""
sources:
  one:
    url: {site.url('/one')}
  two:
    url: {site.url('/two')}
offerings:
  acme:
    records:
      first:
        cites: [{{source: one, quote: A sentence that is not on page one.}}]
      second:
        cites: [{{source: two, quote: A sentence that is not on page two.}}]
notify:
  webhook:
    url: {receiver.url}
""")
    args = ["--config", str(config), "--db", str(db_path), "schedule", "--once", "--log-format", "json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    [body] = receiver.bodies
    assert body["run"]["trigger"] == "schedule" and body["records_flagged"] == 2
    assert sorted(f["record"] for f in body["flags"]) == ["acme/first", "acme/second"]
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # the test server logs here too
    assert [line["event"] for line in lines if line["logger"].startswith("watcher")] == ["run", "notification"]

    assert CliRunner().invoke(cli, args).exit_code == 0  # nothing due, nothing new: no message
    assert len(receiver.bodies) == 1


@given(records=st.lists(st.text(min_size=1, max_size=300), max_size=60), error=st.text(max_size=2000))
def test_the_slack_text_stays_within_slacks_limit_and_escapes_markup(records, error):
    flags = [{"record": record, "reason": "quote_changed", "source": "policy"} for record in records]
    report = {"offerings": [{"records": [{"flags": flags}]}]}
    failing = [{"source": "policy", "outcome": "server_error", "error": error}]
    text = slack_text(Digest("digest", "[watcher] <test> & more", report, failing, [], None, len(flags), html=""))
    assert len(text) <= SLACK_TEXT_LIMIT
    assert text.startswith("*[watcher] &lt;test&gt; &amp; more*")
    assert "<" not in text and ">" not in text
