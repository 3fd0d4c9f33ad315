"""healthscore: explained customer health scores that prove they predict churn."""

from healthscore.errors import ConfigError, DataError, HealthScoreError, NotFoundError
from healthscore.project import Project

__all__ = ["ConfigError", "DataError", "HealthScoreError", "NotFoundError", "Project"]
__version__ = "0.1.0"
