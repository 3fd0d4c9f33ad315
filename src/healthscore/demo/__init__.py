"""Seeded demo data: realistic customer-success data with known, planted truths."""

from healthscore.demo.generate import generate

__all__ = ["generate"]
