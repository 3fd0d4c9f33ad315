"""Notifications: CTA opened, assigned, escalated or overdue, tasks due, mentions in comments
and band changes go to the people concerned, in the app (their inbox), by chat (Slack, Teams,
Discord... through Apprise, or any Slack-compatible webhook) and by email (SMTP), as each user
chose: which events, which channels, and at once or in a daily digest (chat and email; the
inbox gets each at once). Every message sent out is logged with its result."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from healthscore.config.secrets import redact_url
from healthscore.errors import InvalidActionError
from healthscore.tables import Cta, Notification, Task, User
from healthscore.workflow.base import Context, Service, row_dict
from healthscore.workflow.inbox import InboxService

EVENTS = ("cta_opened", "cta_assigned", "cta_escalated", "cta_overdue", "task_due", "cta_mention",
          "band_change")
CHANNELS = ("inapp", "email", "webhook")  # inapp: the user's inbox in the web app
TIMEOUT = 10


class NotifyService(Service):
    def __init__(self, ctx: Context, inbox: InboxService) -> None:
        super().__init__(ctx)
        self.inbox = inbox

    def set_preferences(self, user: str, *, actor: str, events: list[str] | None = None,
                        webhook_url: str | None = None, email: str | None = None,
                        digest: bool | None = None, channels: list[str] | None = None) -> dict[str, Any]:
        """Which events reach ``user`` (none given: every event), on which channels (None:
        every channel they can get), and at once or in a daily digest. Choosing email or chat
        needs an address for it."""
        bad = [e for e in events or [] if e not in EVENTS]
        if bad:
            raise InvalidActionError(f"events: unknown {bad[0]!r}. Events: {', '.join(EVENTS)}.")
        wrong = [c for c in channels or [] if c not in CHANNELS]
        if wrong:
            raise InvalidActionError(f"channels: unknown {wrong[0]!r}. Channels: {', '.join(CHANNELS)}.")
        with self.store.session() as s:
            actor = self._actor(s, actor, admin=actor != user)  # one's own, or an admin
            u = self._user(s, user)
            before = row_dict(u)
            if events is not None:
                u.notify_events = list(events)
            if webhook_url is not None:
                if webhook_url:
                    check_webhook(webhook_url)
                u.webhook_url = webhook_url or None
            if email is not None:
                u.email = email or None
            if digest is not None:
                u.digest = digest
            if channels is not None:
                self._check_addresses(u, channels)
                u.notify_channels = [c for c in CHANNELS if c in channels]
            self._audit(s, actor, "user", u.name, "preferences", before, row_dict(u))
            return {k: v for k, v in row_dict(u).items() if k != "password_hash"}

    def _check_addresses(self, u: User, channels: list[str]) -> None:
        if "email" in channels and not u.email:
            raise InvalidActionError("email: give an email address to get notifications by email "
                                     "(or leave the email channel off).")
        if "webhook" in channels and not (u.webhook_url or self.spec.notifications.webhook):
            raise InvalidActionError("webhook: give a webhook address to get notifications by chat "
                                     "(or leave the chat channel off).")

    def notify_later(self, s: Session, user: str | None, event: str, text: str, *,
                     account_id: str | None = None, cta_id: int | None = None) -> None:
        """Tell ``user`` if they want this event: in their inbox at once, by chat and email
        queued for flush_notifications (or their digest)."""
        if not user:
            return
        u = s.scalar(select(User).where(User.name == user))
        if u is None or (u.notify_events and event not in u.notify_events):
            return
        for channel in self._channels(u):
            if channel == "inapp":
                self.inbox.add(s, u.name, event, text, account_id=account_id, cta_id=cta_id)
                continue
            s.add(Notification(at=self.now(), user=u.name, channel=channel, event=event, text=text,
                               status="digest" if u.digest else "pending"))

    def _channels(self, u: User) -> list[str]:
        chosen = CHANNELS if u.notify_channels is None else u.notify_channels
        out = ["inapp"] if "inapp" in chosen else []
        if "webhook" in chosen and (u.webhook_url or self.spec.notifications.webhook):
            out.append("webhook")
        if "email" in chosen and u.email and self.spec.notifications.smtp_host:
            out.append("email")
        return out

    def mentions(self, s: Session, actor: str, text: str, *, account_id: str, cta_id: int) -> list[str]:
        """Tell each user named as ``@Name`` in a comment on a CTA (not its author); who that was."""
        said = text.casefold()
        names = [n for n in s.scalars(select(User.name)) if n != actor and f"@{n}".casefold() in said]
        for name in names:
            self.notify_later(s, name, "cta_mention",
                              f"{actor} mentioned you on CTA #{cta_id} for {account_id}: {text}",
                              account_id=account_id, cta_id=cta_id)
        return names

    def notify_overdue(self) -> int:
        """Tell owners of each open CTA past its due date and of each open task of an open
        CTA due today or earlier (run once a day); how many CTAs were overdue."""
        with self.store.session() as s:
            ctas = list(s.scalars(select(Cta).where(Cta.status == "open", Cta.due_on < self.today)))
            for c in ctas:
                self.notify_later(s, c.owner, "cta_overdue",
                                  f"CTA #{c.id} for {c.account_id} is overdue (due {c.due_on}): {c.reason}",
                                  account_id=c.account_id, cta_id=c.id)
            due = s.scalars(select(Task).join(Cta, Task.cta_id == Cta.id)
                            .options(selectinload(Task.cta))
                            .where(Task.status == "open", Cta.status == "open",
                                   Task.due_on.is_not(None), Task.due_on <= self.today)
                            .order_by(Task.id))
            for t in due:
                cta = t.cta
                if cta is not None:
                    self.notify_later(s, t.owner, "task_due",
                                      f"Task '{t.title}' of CTA #{cta.id} for {cta.account_id} is due "
                                      f"{t.due_on}", account_id=cta.account_id, cta_id=cta.id)
        self.flush_notifications()
        return len(ctas)

    def flush_notifications(self) -> dict[str, int]:
        """Send what is pending now; each message is marked sent or failed with the error."""
        counts = {"sent": 0, "failed": 0}
        with self.store.session() as s:
            pending = list(s.scalars(select(Notification).where(Notification.status == "pending")))
            for n in pending:
                self._send(s, n, n.text, counts)
        return counts

    def send_digest(self) -> dict[str, int]:
        """One message per user and channel with everything queued for their digest."""
        counts = {"sent": 0, "failed": 0}
        with self.store.session() as s:
            queued = list(s.scalars(select(Notification).where(Notification.status == "digest")
                                    .order_by(Notification.id)))
            groups: dict[tuple[str, str], list[Notification]] = {}
            for n in queued:
                groups.setdefault((n.user, n.channel), []).append(n)
            for (_, _), items in groups.items():
                text = "healthscore daily digest:\n" + "\n".join(f"- {n.text}" for n in items)
                self._send(s, items[0], text, counts)
                for n in items[1:]:
                    n.status, n.error = items[0].status, items[0].error
        return counts

    def notifications(self, user: str | None = None, *, after_id: int = 0,
                      status: str | None = None) -> list[dict[str, Any]]:
        """The message log, oldest first: one user's, those after ``after_id``, or one status."""
        with self.store.session() as s:
            q = select(Notification).where(Notification.id > after_id).order_by(Notification.id)
            if user:
                q = q.where(Notification.user == user)
            if status:
                q = q.where(Notification.status == status)
            return [row_dict(n) for n in s.scalars(q)]

    def last_notification_id(self) -> int:
        with self.store.session() as s:
            return int(s.scalar(select(func.max(Notification.id))) or 0)

    def _send(self, s: Session, n: Notification, text: str, counts: dict[str, int]) -> None:
        u = s.scalar(select(User).where(User.name == n.user))
        try:
            if n.channel == "webhook":
                _post(u.webhook_url if u and u.webhook_url else self.spec.notifications.webhook or "", text)
            else:
                self._mail(u.email if u else "", n.event, text)
            n.status, n.error = "sent", None
            counts["sent"] += 1
        except Exception as err:  # a down server must not stop the run: log and go on
            n.status, n.error = "failed", f"{type(err).__name__}: {err}"
            counts["failed"] += 1

    def _mail(self, to: str | None, event: str, text: str) -> None:
        cfg = self.spec.notifications
        msg = EmailMessage()
        msg["From"], msg["To"] = cfg.smtp_from, to or ""
        msg["Subject"] = f"healthscore: {event.replace('_', ' ')}"
        msg.set_content(text)
        with smtplib.SMTP(cfg.smtp_host or "localhost", cfg.smtp_port, timeout=TIMEOUT) as smtp:
            smtp.send_message(msg)


def _post(url: str, text: str) -> None:
    """Send ``text`` to a chat: any Apprise URL (slack://, msteams://, discord://, tgram://...,
    and Slack's own https://hooks.slack.com/... address), or any other http(s) address as a
    Slack-compatible webhook (a JSON body {"text": ...})."""
    import logging

    import apprise

    sender = apprise.Apprise()
    if not sender.add(apprise_url(url)):
        raise ValueError(f"{redact_url(url)} is not a notification address (see the Apprise URL list)")
    with apprise.LogCapture(level=logging.WARNING) as said:
        sent = sender.notify(body=text)
    if not sent:
        why = " ".join(said.getvalue().split()) or "no reason given"
        raise RuntimeError(f"the service refused the message: {why[:300]}")


def apprise_url(url: str) -> str:
    """The Apprise URL for a webhook address: itself when Apprise knows it, else a generic
    JSON POST shaped like Slack's ({"text": ...})."""
    if _known(url):
        return url
    for scheme, generic in (("https://", "jsons://"), ("http://", "json://")):
        if url.startswith(scheme):
            sep = "&" if "?" in url else "?"
            return f"{generic}{url[len(scheme):]}{sep}:message=text&:version&:title&:type&:attachments"
    return url


def _known(url: str) -> bool:
    """Whether Apprise takes ``url`` as it is (asked quietly: a 'no' is not an error here)."""
    import logging

    import apprise

    logger = logging.getLogger("apprise")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return bool(apprise.Apprise().add(url))
    finally:
        logger.setLevel(level)


def check_webhook(url: str) -> None:
    if not _known(apprise_url(url)):
        raise InvalidActionError(
            f"webhook: {redact_url(url)} is not a notification address. Give an http(s) webhook "
            f"(Slack-compatible) or an Apprise URL such as slack://..., msteams://..., discord://...")
