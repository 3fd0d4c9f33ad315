"""A project: the one object behind the CLI, the API, the web app and the tests (``core``),
the morning job over it (``daily``) and its backup and restore (``backup``)."""

from healthscore.project.core import Project, RunResult, data_warnings

__all__ = ["Project", "RunResult", "data_warnings"]
