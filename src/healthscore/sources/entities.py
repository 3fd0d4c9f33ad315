"""The canonical entities (defined in :mod:`healthscore.entities`, which every stage may use)."""

from healthscore.entities import ENTITIES, Column, Entity

__all__ = ["ENTITIES", "Column", "Entity"]
