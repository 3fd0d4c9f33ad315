"""The inbox and the notification settings over HTTP: /api/inbox shows only one's own (403 for
another's, 404 for another's item), the unread count is in every page's navigation, marking
read lowers it, and the settings form keeps what was typed when it is refused."""

from __future__ import annotations

import re

from .test_web import ADMIN, CSM, LEAD, OTHER_CSM, Site, login, project, site

__all__ = ["project", "site"]  # the shared fixtures of tests/test_web.py


def _escalated(site: Site) -> int:
    """A CTA of the CSM's, escalated by the CSM to their lead: one item in the lead's inbox."""
    cta = site.cta(site.own, owner=CSM)
    site.wf.mark_all_read(CSM)
    r = site.client.post(f"/api/ctas/{cta}/escalate", json={"note": "no answer"}, headers=site.as_(CSM))
    assert r.status_code == 200, r.text
    return cta


def test_api_inbox_is_ones_own(site: Site) -> None:
    assert site.client.get("/api/inbox").status_code == 401
    cta = _escalated(site)
    box = site.client.get("/api/inbox", headers=site.as_(LEAD)).json()
    assert box["unread"] == 1 and box["total"] == 1 and box["user"] == LEAD
    (item,) = box["items"]
    assert (item["event"], item["cta_id"], item["account_id"]) == ("cta_escalated", cta, site.own)
    assert site.client.get("/api/inbox", headers=site.as_(OTHER_CSM)).json()["items"] == []
    r = site.client.get("/api/inbox", params={"of": LEAD}, headers=site.as_(CSM))
    assert r.status_code == 403
    assert r.json() == {"error": "forbidden", "details": [],
                        "message": f"{CSM}: you see only your own inbox, not {LEAD}'s."}
    r = site.client.get("/api/inbox", params={"of": LEAD}, headers=site.as_(ADMIN))
    assert r.status_code == 403  # an admin too: an inbox is personal
    assert site.client.get("/api/inbox", params={"of": LEAD}, headers=site.as_(LEAD)).status_code == 200
    r = site.client.post(f"/api/inbox/{item['id']}/read", headers=site.as_(CSM))
    assert r.status_code == 404
    assert r.json()["message"] == f"inbox item #{item['id']}: {CSM} has no such item."
    assert site.client.get("/api/inbox", headers=site.as_(LEAD)).json()["unread"] == 1
    r = site.client.post(f"/api/inbox/{item['id']}/read", headers=site.as_(LEAD))
    assert r.status_code == 200 and r.json()["unread"] == 0 and r.json()["read_at"]
    assert site.client.post("/api/inbox/99999999/read", headers=site.as_(LEAD)).status_code == 404
    assert site.client.get("/api/inbox?per_page=201", headers=site.as_(LEAD)).status_code == 422


def test_mark_all_read_and_unread_only(site: Site) -> None:
    for _ in range(3):
        _escalated(site)
    r = site.client.get("/api/inbox", params={"unread": "true", "per_page": 2}, headers=site.as_(LEAD))
    assert r.json()["total"] == 3 and len(r.json()["items"]) == 2 and r.json()["pages"] == 2
    r = site.client.post("/api/inbox/read", headers=site.as_(LEAD))
    assert r.json() == {"user": LEAD, "marked": 3, "unread": 0}
    assert site.client.get("/api/inbox?unread=true", headers=site.as_(LEAD)).json()["items"] == []


def test_settings_over_the_api(site: Site) -> None:
    r = site.client.get("/api/me/notifications", headers=site.as_(CSM))
    assert r.json()["channels"] == ["inapp", "email", "webhook"] and len(r.json()["events"]) == 7
    body = {"events": ["cta_escalated", "cta_mention"], "channels": ["inapp"], "digest": True}
    r = site.client.put("/api/me/notifications", json=body, headers=site.as_(CSM))
    assert r.status_code == 200, r.text
    assert (r.json()["events"], r.json()["channels"], r.json()["digest"]) == (
        ["cta_escalated", "cta_mention"], ["inapp"], True)
    r = site.client.put("/api/me/notifications", json={**body, "events": []}, headers=site.as_(CSM))
    assert r.status_code == 422 and r.json()["message"] == (
        "events: choose at least one event (to hear of nothing, turn every channel off).")
    r = site.client.put("/api/me/notifications", json={**body, "channels": ["sms"]}, headers=site.as_(CSM))
    assert r.status_code == 422
    r = site.client.put("/api/me/notifications", json={**body, "events": ["gossip"]}, headers=site.as_(CSM))
    assert r.json()["message"].startswith("events: unknown 'gossip'. Events: cta_opened, ")
    assert site.wf.user(CSM)["notify_events"] == ["cta_escalated", "cta_mention"]  # refused: unchanged


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def test_pages_show_the_count_and_mark_read_lowers_it(site: Site) -> None:
    _escalated(site)
    _escalated(site)
    login(site, LEAD)
    page = site.client.get("/me")
    assert re.search(r'id="nav-inbox"[^>]*aria-label="Inbox: 2 unread"', page.text)
    page = site.client.get("/inbox")
    assert page.status_code == 200 and "2 unread" in page.text
    ids = [int(i) for i in re.findall(r'action="/inbox/(\d+)/read"', page.text)]
    assert len(ids) == 2 and 'href="/ctas/' in page.text
    r = site.client.post(f"/inbox/{ids[0]}/read", data={"csrf_token": _csrf(page.text)},
                         headers={"referer": str(site.client.base_url) + "/inbox"})
    assert r.status_code == 200 and "Marked as read." in r.text
    assert re.search(r'aria-label="Inbox: 1 unread"', r.text)
    r = site.client.post("/inbox/read", data={"csrf_token": _csrf(page.text)})
    assert "All marked as read." in r.text and re.search(r'aria-label="Inbox: 0 unread"', r.text)


def test_the_settings_form_keeps_what_was_typed_on_an_error(site: Site) -> None:
    login(site, CSM)
    page = site.client.get("/me")
    form = {"csrf_token": _csrf(page.text), "events": ["cta_escalated", "task_due"],
            "channels": ["inapp", "webhook"], "webhook": "ftp://files.example.com/x",
            "email": "anna@example.com", "digest": "true"}
    r = site.client.post("/me/notifications", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert 'id="error-notify-webhook"' in r.text and "is not a notification address" in r.text
    assert 'value="ftp://files.example.com/x"' in r.text and 'value="anna@example.com"' in r.text
    assert re.search(r'value="task_due" checked', r.text)
    assert not re.search(r'value="cta_opened" checked', r.text)
    assert re.search(r'name="digest" value="true" checked', r.text)
    assert site.wf.user(CSM)["email"] is None  # refused: nothing written
    r = site.client.post("/me/notifications", data={**form, "webhook": ""}, headers={"HX-Request": "true"})
    assert "webhook: give a webhook address to get notifications by chat" in r.text
    r = site.client.post("/me/notifications", data={**form, "webhook": "", "channels": ["inapp", "email"]})
    assert r.status_code == 200 and "Notification settings saved." in r.text
    saved = site.wf.user(CSM)
    assert (saved["notify_channels"], saved["email"], saved["digest"]) == (["inapp", "email"],
                                                                          "anna@example.com", True)


def test_an_escalation_names_the_person_it_reached(site: Site) -> None:
    cta = _escalated(site)
    login(site, CSM)
    page = site.client.get(f"/ctas/{cta}")
    row = page.text.split('id="cta-escalations"', 1)[1].split("</tbody>", 1)[0]
    assert f'<td>{LEAD} <small class="muted">(lead)</small></td>' in row


def test_the_settings_form_removes_an_emptied_email_and_a_webhook_on_request(site: Site) -> None:
    login(site, CSM)
    page = site.client.get("/me")
    form = {"csrf_token": _csrf(page.text), "events": ["cta_escalated"], "channels": ["inapp"],
            "email": "anna@example.com", "webhook": "https://hooks.example.com/anna", "digest": "false"}
    r = site.client.post("/me/notifications", data=form)
    assert "Notification settings saved." in r.text
    assert 'id="notify-webhook-remove"' in r.text  # offered once a webhook is set
    saved = site.wf.user(CSM)
    assert (saved["email"], saved["webhook_url"]) == ("anna@example.com", "https://hooks.example.com/anna")
    r = site.client.post("/me/notifications", data={**form, "webhook": ""})  # left empty: kept
    assert site.wf.user(CSM)["webhook_url"] == "https://hooks.example.com/anna"
    r = site.client.post("/me/notifications", data={**form, "email": "", "webhook": "",
                                                    "webhook_remove": "true"})
    assert "Notification settings saved." in r.text
    saved = site.wf.user(CSM)
    assert (saved["email"], saved["webhook_url"]) == (None, None)
    assert 'id="notify-webhook-remove"' not in r.text
    r = site.client.post("/me/notifications", data={**form, "email": "", "webhook": "",
                                                    "channels": ["inapp", "email"]},
                         headers={"HX-Request": "true"})
    assert 'id="error-notify-email"' in r.text  # email chosen with no address: refused
