"""The REST API against its own OpenAPI document, by schemathesis (pinned in the dev extras):
requests generated from the schema - valid ones and broken ones (bodies that are not JSON,
wrong types, huge numbers) - for every operation, as an admin, a CSM and a viewer, in process.
Every response must be no server error, carry a documented status code and content type, and
match its documented schema. Seeded and bounded (8 cases an operation)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from healthscore.project import Project  # noqa: E402
from healthscore.web.app import create_app  # noqa: E402

from .projects import write_project  # noqa: E402

CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance)
ROLES = ("admin", "csm", "viewer")


def _app() -> tuple[Any, dict[str, str]]:
    """The mini project served in process, with a token per role."""
    root = Path(tempfile.mkdtemp(prefix="healthscore-api-schema-"))
    project = Project.load(write_project(root / "p"))
    project.run(as_of="2025-03-01", apply_rules=False)
    app = create_app(project, url=f"sqlite:///{root / 'wf.db'}", today=date(2025, 3, 1))
    w = app.state.site.wf
    w.add_user("admin", "admin")
    tokens = {}
    for role in ROLES:
        if role != "admin":
            w.add_user(role, role, actor="admin")
        tokens[role] = w.create_token(role, "schemathesis", actor=role)["token"]
    return app, tokens


APP, TOKENS = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any, role: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {TOKENS[role]}"})
    case.validate_response(response, checks=CHECKS)


def test_a_body_that_is_not_json_gets_the_api_error_not_starlettes() -> None:
    from fastapi.testclient import TestClient

    client = TestClient(APP)  # no lifespan: the app stays open for the other tests
    r = client.post("/api/tokens", content=b"\x1d\xff{", headers={
        "Authorization": f"Bearer {TOKENS['admin']}", "Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json() == {"error": "invalid_request", "details": [], "message": (
        "request: the body could not be read as JSON. Send a JSON object in UTF-8 with "
        "'Content-Type: application/json'.")}
