"""One CTA's own page: the CTA with its account's health, ARR and renewal, its playbook tasks,
comments, escalations and the audit history of the CTA and its tasks, and whether the signed-in
user may act on it. Like :mod:`healthscore.web.views`, the dict is what the /api twin returns."""

from __future__ import annotations

from typing import Any

from healthscore.tables import TOUCHES
from healthscore.web.queue import may_act_on_cta, with_accounts
from healthscore.web.views import Site, assignable
from healthscore.workflow.access import may_act_on
from healthscore.workflow.overrides import REASON_CODES

_UNCHANGED = {"version"}  # moves on every change: not worth a line of the history


def cta(site: Site, user: dict[str, Any], cta_id: int) -> dict[str, Any]:
    """The CTA as the work queue shows it, plus its tasks, comments (oldest first), escalations
    and history (what each change did, oldest first); controls only for who may act on it.
    ``can_act_account``: the user may also act on the account (log a touch, override its band)
    from here; then ``bands``, ``reason_codes`` and ``touches`` are the choices those forms offer."""
    wf = site.wf
    out = with_accounts(site, [wf.cta(cta_id)])[0]
    teams = wf.teams()
    out["can_act"] = may_act_on_cta(user, out, teams)
    out["can_act_account"] = may_act_on(user, out.get("account_csm"), teams)
    out["bands"] = wf.band_names() if out["can_act_account"] else []
    out["reason_codes"] = list(REASON_CODES) if out["can_act_account"] else []
    out["touches"] = list(TOUCHES) if out["can_act_account"] else []
    out["comments"] = wf.comments(cta_id)
    out["escalations"] = wf.escalations(cta_id)
    out["history"] = history(site, cta_id, [t["id"] for t in out["tasks"]])
    out["assignable"] = assignable(site) if out["can_act"] else []
    out["escalate_to"] = [*wf.spec.escalation[1:], *wf.spec.departments] if out["can_act"] else []
    return out


def history(site: Site, cta_id: int, task_ids: list[int]) -> list[dict[str, Any]]:
    """The audit log of the CTA and of its tasks, oldest first: who did what when, and the
    fields each change changed (``{field: [before, after]}``)."""
    rows = site.wf.audit("cta", str(cta_id)) + site.wf.audit_of("task", [str(t) for t in task_ids])
    rows.sort(key=lambda a: (a["at"], a["id"]))
    return [{"at": a["at"], "actor": a["actor"], "entity": a["entity"],
             "entity_id": int(a["entity_id"]), "action": a["action"], "kind": _kind(a),
             "changes": _changes(a.get("before"), a.get("after"))} for a in rows]


def _kind(audit: dict[str, Any]) -> str:
    """The timeline kind of the same change (its label in every language): cta_opened,
    cta_closed, cta_comment, task_done..."""
    if audit["entity"] == "task":
        return "task_done"
    return {"open": "cta_opened", "comment": "cta_comment"}.get(audit["action"], f"cta_{audit['action']}")


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    if before is None:  # opened, or a comment: nothing was there before
        return {k: [None, v] for k, v in (after or {}).items() if k == "text"}
    after = after or {}
    return {k: [before.get(k), after.get(k)] for k in after
            if k not in _UNCHANGED and before.get(k) != after.get(k)}
