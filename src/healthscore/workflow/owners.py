"""Who holds an owner name. Rules, playbook tasks, success-plan tasks and escalation name owners
(``csm``, ``lead``, ``finance``, ``vp_cs``...); ``workflow.owners`` says who holds each: one
user, a team (its lead, else its first member) or an app role (the holder in the account's CSM's
team, else the first one). A name resolves to a user of the store, never to itself: when the
team has users and nobody holds a name, that is a configuration error saying how to fix it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from healthscore.config.specs import OwnerSpec
from healthscore.errors import ConfigError, InvalidActionError
from healthscore.tables import User
from healthscore.workflow.base import Service

CSM = "csm"  # the account's CSM: built in


def holder_of(spec: OwnerSpec, users: list[User], csm_team: str | None) -> User | None:
    """The user holding ``spec`` for an account whose CSM is in ``csm_team`` (``users`` by id)."""
    if spec.user is not None:
        return next((u for u in users if u.name == spec.user), None)
    if spec.team is not None:
        team = [u for u in users if u.team == spec.team]
        return next((u for u in team if u.role == "lead"), team[0] if team else None)
    with_role = [u for u in users if u.role == spec.role]
    same_team = [u for u in with_role if csm_team is not None and u.team == csm_team]
    return next(iter(same_team or with_role), None)


def nobody(name: str, spec: OwnerSpec) -> str:
    """Why nobody holds ``name``, and how to fix it."""
    if spec.user is not None:
        what, fix = f"the user {spec.user!r}, who does not exist", "--role csm"
    elif spec.team is not None:
        what, fix = f"the team {spec.team!r}, which has no user", f"--role csm --team {spec.team}"
    else:
        what, fix = f"the role {spec.role!r}, which no user has", f"--role {spec.role}"
    return (f"healthscore.yml: workflow.owners.{name}: nobody holds it: it is {what}. Add one "
            f"(healthscore users add NAME {fix}) or point it at a person in healthscore.yml "
            f"(workflow: {{owners: {{{name}: {{user: NAME}}}}}}).")


def _users(s: Session) -> list[User]:
    """The store's users by id, read once per session (a plan's CTAs and their tasks resolve
    their owners in one session: one read, not one per task)."""
    if "users" not in s.info:
        s.info["users"] = list(s.scalars(select(User).order_by(User.id)))
    return list(s.info["users"])


class OwnerService(Service):
    """Owner names -> the users who hold them."""

    def resolve(self, s: Session, name: str, account: dict[str, Any]) -> str | None:
        """The user who owns ``name``'s work on ``account``: ``csm`` is the account's CSM, an
        owner name its holder, else ``name`` must be a user. With no users at all (scores and
        rules without the app) nobody holds anything: None."""
        if name == CSM:
            return account.get("csm") or None
        users = _users(s)
        spec = self.wf.owners.get(name)
        if spec is None:
            if any(u.name == name for u in users):
                return name
            raise InvalidActionError(f"owner: no user or owner named {name!r}. Owners: "
                                     f"{', '.join([CSM, *sorted(self.wf.owners)])}; or a user's name.")
        if not users:
            return None
        team = next((u.team for u in users if u.name == account.get("csm")), None)
        person = holder_of(spec, users, team)
        if person is None:
            raise ConfigError(nobody(name, spec))
        return person.name

    def check(self, s: Session, names: list[str]) -> None:
        """Every one of these owner names has a holder (when the store has users at all)."""
        users = _users(s)
        if not users:
            return
        for name in dict.fromkeys(names):
            spec = self.wf.owners.get(name)
            if spec is not None and holder_of(spec, users, None) is None:
                raise ConfigError(nobody(name, spec))

    def check_rules(self) -> None:
        """What the rules would assign has a holder: run before scoring, so a run stops early."""
        with self.store.session() as s:
            self.check(s, self.needed_by_rules())

    def needed_by_rules(self, rules: list[str] | None = None) -> list[str]:
        """The owner names the rules' CTAs (all, or these rules') and their playbooks' tasks use."""
        names: list[str] = []
        for name, (rule, _) in self.wf.rules.items():
            if rules is not None and name not in rules:
                continue
            names.append(rule.cta.owner)
            book = self.wf.playbooks.get(rule.cta.playbook or "")
            names += [t.role for t in book.tasks] if book else []
        return [n for n in names if n != CSM]

    def holders(self) -> dict[str, str | None]:
        """Each owner name and who holds it (for an account without a team): what ``check`` shows."""
        with self.store.session() as s:
            users = list(s.scalars(select(User).order_by(User.id)))
            out: dict[str, str | None] = {}
            for name, spec in sorted(self.wf.owners.items()):
                person = holder_of(spec, users, None)
                out[name] = person.name if person else None
            return out
