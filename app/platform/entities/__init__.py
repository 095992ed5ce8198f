"""The secure entity service: the one way code reads and writes entities."""

from app.platform.entities.models import Entity, Link, OrderKey, Page
from app.platform.entities.service import ActorEntities, EntityService

__all__ = ["ActorEntities", "Entity", "EntityService", "Link", "OrderKey", "Page"]
