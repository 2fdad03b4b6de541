"""Digests for editors: one message per run that has something to tell, by email and by webhook.

A digest announces what the database says was never announced, not what one
run happened to see, so nothing is lost to a failed delivery, a manual
``watcher check`` or a scheduler stopped mid-run:

- open flags that no delivered digest has announced (``flags.notified_at``);
- sources that started failing (gone, or failing the number of checks in a row
  that flags their records) and were not announced; sources announced as
  failing that work again (``sources.failure_notified_at``), so a failing
  source is announced once when it starts failing and once when it recovers.

A digest counts as delivered when at least one channel accepted it; when every
channel fails, the next run's digest announces the same items again. Every
attempt is logged in the ``notifications`` table.

The webhook body (schema ``watcher.digest/1``, documented in the README) is
one JSON object; its ``text`` field makes a Slack incoming webhook work as is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import httpx

from .config import Config, EmailChannel, Notify, WebhookChannel
from .errors import UsageError
from .fetch import classify_status
from .politeness import parse_retry_after, retry_delay
from .report import build_report, render_text
from .report_html import gather_evidence, render_html
from .store import Store, timestamp

log = logging.getLogger("watcher.notify")

DIGEST_SCHEMA = "watcher.digest/1"
#: Slack shows about this much of a message's text; the rest is summarized.
SLACK_TEXT_LIMIT = 3000
#: A receiver asking to wait longer than this (Retry-After) is given up on for this run.
MAX_RETRY_AFTER = 60.0
_RUN_FIELDS = ("id", "trigger", "status", "started_at", "finished_at", "sources_checked", "unchanged", "changed",
               "failed", "flags_raised")


@dataclass(frozen=True)
class Digest:
    """What one message tells editors."""

    kind: str  # digest | test
    subject: str
    report: dict[str, Any]  # build_report's data, restricted to the flags announced
    failing: list[dict[str, Any]]  # sources that started failing
    recovered: list[dict[str, Any]]  # sources announced as failing that work again
    run: dict[str, Any] | None
    open_flags: int  # every open flag, announced before or not
    html: str  # the HTML report of what it announces, for mail clients

    @property
    def flags(self) -> list[dict[str, Any]]:
        return [flag for offering in self.report["offerings"] for record in offering["records"]
                for flag in record["flags"]]


@dataclass(frozen=True)
class Delivery:
    """One channel's attempt to deliver a digest."""

    channel: str  # email | webhook
    target: str  # the recipients, or the webhook's scheme and host (never its path: Slack keeps the secret there)
    sent: bool
    attempts: int
    error: str | None = None


# --------------------------------------------------------------------------
# What to announce


def pending_digest(config: Config, store: Store, now: datetime, run_id: int | None = None) -> Digest | None:
    """The digest of everything not yet announced, or None when there is nothing to tell."""
    flag_ids = {row["id"] for row in store.unnotified_flags()}
    failing_rows, recovered_rows = store.failure_notices()
    failing = [_failing_view(row) for row in failing_rows if row["id"] in config.sources]
    recovered = [_recovered_view(row) for row in recovered_rows if row["id"] in config.sources]
    if not (flag_ids or failing or recovered):
        return None
    report = build_report(config, store, None, now)
    return _digest("digest", _restrict(report, flag_ids), failing, recovered, _run(store, run_id),
                   open_flags=report["flags"], store=store)


def sample_digest(config: Config, store: Store, now: datetime) -> Digest:
    """A sample digest: every open flag, as the next real digest would show them."""
    report = build_report(config, store, None, now)
    run = report["last_run"]
    return _digest("test", report, [], [], _run(store, run["id"] if run else None), open_flags=report["flags"],
                   store=store)


def _digest(kind: str, report: dict[str, Any], failing: list[dict], recovered: list[dict],
            run: dict | None, open_flags: int, store: Store) -> Digest:
    parts = []
    if report["records_flagged"]:
        parts.append(f"{report['records_flagged']} record(s) to re-verify")
    if failing:
        parts.append(f"{len(failing)} source(s) failing")
    if recovered:
        parts.append(f"{len(recovered)} source(s) recovered")
    summary = ", ".join(parts) or "nothing to re-verify"
    subject = f"[watcher] {'test digest: ' if kind == 'test' else ''}{summary}"
    # The HTML report, with changes in context; snapshots are named, not attached, to keep mail small.
    html = render_html(report, gather_evidence(report, store, largest_snapshot=0, embed_budget=0))
    return Digest(kind, subject, report, failing, recovered, run, open_flags, html)


def _restrict(report: dict[str, Any], flag_ids: set[int]) -> dict[str, Any]:
    """The report with only the given flags (and the records and offerings that still have some)."""
    offerings = []
    for offering in report["offerings"]:
        records = [{**record, "flags": [f for f in record["flags"] if f["id"] in flag_ids]}
                   for record in offering["records"]]
        records = [record for record in records if record["flags"]]
        if records:
            offerings.append({**offering, "records": records})
    return {**report, "offerings": offerings,
            "records_flagged": sum(len(o["records"]) for o in offerings),
            "flags": sum(len(r["flags"]) for o in offerings for r in o["records"])}


def _run(store: Store, run_id: int | None) -> dict[str, Any] | None:
    row = store.row("SELECT * FROM runs WHERE id = ?", [run_id]) if run_id is not None else None
    return {name: row[name] for name in _RUN_FIELDS} if row else None


def _failing_view(row: dict) -> dict[str, Any]:
    return {"source": row["id"], "url": row["url"], "outcome": row["last_outcome"], "error": row["last_error"],
            "failing_since": row["failing_since"], "consecutive_failures": row["consecutive_failures"]}


def _recovered_view(row: dict) -> dict[str, Any]:
    return {"source": row["id"], "url": row["url"], "recovered_at": row["last_success_at"],
            "announced_failing_at": row["failure_notified_at"]}


# --------------------------------------------------------------------------
# Rendering


def headline(digest: Digest) -> list[str]:
    """The digest in a few lines: new flags, sources that started failing or recovered."""
    report = digest.report
    lines = []
    if digest.kind == "test":
        lines.append("This is a test digest: it shows every open flag, the way digests will.")
    if report["flags"]:
        lines.append(f"{report['records_flagged']} record(s) need re-verification ({report['flags']} new flag(s)).")
    earlier = digest.open_flags - report["flags"]
    if digest.kind == "digest" and earlier > 0:
        lines.append(f"{earlier} flag(s) announced before are still open (`watcher report` lists them all).")
    for source in digest.failing:
        lines.append(f"Started failing: {source['source']} ({source['outcome']} since {source['failing_since']}, "
                     f"{source['consecutive_failures']} check(s) in a row): {source['error']}")
    for source in digest.recovered:
        lines.append(f"Recovered: {source['source']} works again since {source['recovered_at']}")
    return lines


def render_digest_text(digest: Digest) -> str:
    """The plain-text digest: the headline, then the report for what it announces."""
    return "\n".join(headline(digest)) + "\n\n" + render_text(digest.report)


def slack_text(digest: Digest) -> str:
    """A short summary in Slack's markup, escaped as Slack asks (&, <, >)."""

    def esc(text: object) -> str:
        return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    lines = [f"*{esc(digest.subject)}*"]
    lines += [f"• {esc(f['record'])}: {esc(f['reason'])}" + (f" ({esc(f['source'])})" if f["source"] else "")
              for f in digest.flags]
    lines += [f"• started failing: {esc(s['source'])} ({esc(s['outcome'])}: {esc(s['error'])})" for s in digest.failing]
    lines += [f"• recovered: {esc(s['source'])}" for s in digest.recovered]
    kept: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index
        if sum(len(k) + 1 for k in kept) + len(line) > SLACK_TEXT_LIMIT - 80:
            kept.append(f"… and {rest} more line(s): run `watcher report`")
            break
        kept.append(line)
    return "\n".join(kept)


def webhook_payload(digest: Digest) -> dict[str, Any]:
    """The webhook's JSON body, schema ``watcher.digest/1``."""
    return {
        "schema": DIGEST_SCHEMA,
        "kind": digest.kind,
        "subject": digest.subject,
        "text": slack_text(digest),
        "generated_at": digest.report["generated_at"],
        "run": digest.run,
        "records_flagged": digest.report["records_flagged"],
        "flags": digest.flags,
        "open_flags": digest.open_flags,
        "sources_failing": digest.failing,
        "sources_recovered": digest.recovered,
    }


def email_message(channel: EmailChannel, digest: Digest, now: datetime) -> EmailMessage:
    """A multipart/alternative message: the text digest and its HTML twin."""
    message = EmailMessage()
    message["Subject"] = digest.subject
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("watcher", domain=parseaddr(channel.sender)[1].rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message.set_content(render_digest_text(digest))
    message.add_alternative(digest.html, subtype="html")
    return message


# --------------------------------------------------------------------------
# Delivery


@dataclass(frozen=True)
class _Try:
    outcome: str  # "ok", or a fetch outcome name: the transient ones are retried
    error: str | None = None
    retry_after: float | None = None


class _MissingSecret(Exception):
    pass


def _secret(name: str | None) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise _MissingSecret(f"the environment variable {name} is not set")
    return value


async def _with_retries(attempt: Callable[[], Awaitable[_Try]], retries: int, backoff: float) -> tuple[_Try, int]:
    """Try until success, a permanent failure or the last retry, as fetches do (backoff, Retry-After)."""
    number = 0
    while True:
        number += 1
        result = await attempt()
        delay = retry_delay(number, result.outcome, result.retry_after, retries, backoff, MAX_RETRY_AFTER)
        if delay is None:
            return result, number
        await asyncio.sleep(delay)


def _smtp_send(channel: EmailChannel, message: EmailMessage, user: str | None, password: str | None) -> None:
    context = ssl.create_default_context()
    if channel.tls == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout, context=context)
    else:
        smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
    with smtp:
        if channel.tls == "starttls":
            smtp.starttls(context=context)  # refuses to go on in clear text when the server cannot
        if user is not None and password is not None:
            smtp.login(user, password)
        smtp.send_message(message)


async def _send_email(channel: EmailChannel, digest: Digest, now: datetime) -> Delivery:
    target = ", ".join(channel.to)
    try:
        user, password = _secret(channel.username_env), _secret(channel.password_env)
    except _MissingSecret as exc:
        return Delivery("email", target, False, 0, str(exc))
    message = email_message(channel, digest, now)

    async def attempt() -> _Try:
        try:
            await asyncio.to_thread(_smtp_send, channel, message, user, password)
        except smtplib.SMTPNotSupportedError:
            return _Try("refused", f"{channel.host} does not offer STARTTLS (set tls: none to send unencrypted)")
        except smtplib.SMTPRecipientsRefused as exc:
            return _Try("refused", f"recipients refused: {', '.join(exc.recipients)}")
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            transient = 400 <= exc.smtp_code < 500
            return _Try("server_error" if transient else "refused", f"SMTP {exc.smtp_code} {text}")
        except ssl.SSLError as exc:
            return _Try("refused", f"TLS with {channel.host} failed: {exc}")
        except TimeoutError:
            return _Try("timeout", f"no answer from {channel.host}:{channel.port} within {channel.timeout:g}s")
        except OSError as exc:  # connection refused or reset, DNS, disconnected
            return _Try("connection_error", f"{channel.host}:{channel.port}: {exc or type(exc).__name__}")
        return _Try("ok")

    result, attempts = await _with_retries(attempt, channel.retries, channel.backoff)
    return Delivery("email", target, result.outcome == "ok", attempts, result.error)


async def _post_webhook(channel: WebhookChannel, digest: Digest, user_agent: str) -> Delivery:
    try:
        url = channel.url or _secret(channel.url_env) or ""
        token = _secret(channel.token_env)
    except _MissingSecret as exc:
        return Delivery("webhook", f"${channel.url_env}", False, 0, str(exc))
    parts = urlsplit(url)
    target = f"{parts.scheme}://{parts.netloc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Delivery("webhook", target, False, 0, f"${channel.url_env} is not an http(s) URL")
    headers = {"Content-Type": "application/json", "User-Agent": user_agent}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(webhook_payload(digest), ensure_ascii=False).encode("utf-8")

    async with httpx.AsyncClient(timeout=channel.timeout, follow_redirects=False, trust_env=False) as client:

        async def attempt() -> _Try:
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.TimeoutException:
                return _Try("timeout", f"no answer within {channel.timeout:g}s")
            except httpx.HTTPError as exc:
                return _Try("connection_error", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            outcome = classify_status(response.status_code)
            if outcome == "ok":
                return _Try("ok")
            return _Try(outcome, f"HTTP {response.status_code}", parse_retry_after(response.headers.get("retry-after")))

        result, attempts = await _with_retries(attempt, channel.retries, channel.backoff)
    return Delivery("webhook", target, result.outcome == "ok", attempts, result.error)


async def deliver(notify: Notify, digest: Digest, user_agent: str, now: datetime) -> list[Delivery]:
    """Send ``digest`` on every configured channel at once; never raises for a failed delivery."""
    sends = []
    if notify.email is not None:
        sends.append(_send_email(notify.email, digest, now))
    if notify.webhook is not None:
        sends.append(_post_webhook(notify.webhook, digest, user_agent))
    deliveries = list(await asyncio.gather(*sends))
    for delivery in deliveries:
        fields = {"event": "notification", "kind": digest.kind, "channel": delivery.channel,
                  "target": delivery.target, "sent": delivery.sent, "attempts": delivery.attempts}
        if delivery.sent:
            log.info("%s sent by %s to %s", digest.kind, delivery.channel, delivery.target, extra={"fields": fields})
        else:
            log.error("%s could not be sent by %s to %s after %d attempt(s): %s", digest.kind, delivery.channel,
                      delivery.target, delivery.attempts, delivery.error,
                      extra={"fields": {**fields, "error": delivery.error}})
    return deliveries


def record_deliveries(store: Store, digest: Digest, deliveries: list[Delivery], now: datetime) -> None:
    """Log the deliveries; once one channel delivered a real digest, its items count as announced."""
    run_id = digest.run["id"] if digest.run else None
    with store.transaction():
        for delivery in deliveries:
            store.add_notification({
                "run_id": run_id, "kind": digest.kind, "channel": delivery.channel, "target": delivery.target,
                "status": "sent" if delivery.sent else "failed", "attempts": delivery.attempts,
                "error": delivery.error, "sent_at": timestamp(now), "flags": len(digest.flags),
                "sources_failing": len(digest.failing), "sources_recovered": len(digest.recovered),
            })
        if digest.kind == "digest" and any(d.sent for d in deliveries):
            store.mark_notified([f["id"] for f in digest.flags], [s["source"] for s in digest.failing],
                                [s["source"] for s in digest.recovered], now)


async def notify_pending(config: Config, store: Store, now: datetime, run_id: int | None = None) -> list[Delivery]:
    """After a run: send one digest of everything not yet announced, if there is anything."""
    if not config.notify.configured:
        return []
    digest = pending_digest(config, store, now, run_id)
    if digest is None:
        return []
    deliveries = await deliver(config.notify, digest, config.settings.user_agent, now)
    record_deliveries(store, digest, deliveries, now)
    return deliveries


def send_test_digest(config: Config, store: Store, now: datetime) -> list[Delivery]:
    """``watcher notify --test``: send a sample digest on every channel; marks nothing as announced."""
    if not config.notify.configured:
        raise UsageError(f"{config.path}: no notify: section with an email or webhook channel to test")
    digest = sample_digest(config, store, now)
    deliveries = asyncio.run(deliver(config.notify, digest, config.settings.user_agent, now))
    record_deliveries(store, digest, deliveries, now)
    return deliveries
