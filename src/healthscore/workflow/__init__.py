"""Act on the score: rules -> CTAs, playbooks, escalation, overrides, success plans, timeline."""
