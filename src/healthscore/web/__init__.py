"""The web app and REST API (healthscore serve): FastAPI over one Project and its Workflow."""
