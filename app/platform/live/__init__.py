"""Live changes: announced writes carried across processes to each subscriber, who reads
them again with their own permissions (see ``bus``, ``hub``, ``connection`` and ``view``)."""

from app.platform.live.bus import RedisChangeBus
from app.platform.live.connection import (
    Feed,
    LimitReached,
    LiveConnection,
    ReplayUnavailable,
    UserConnections,
    follow,
)
from app.platform.live.hub import Delivery, Hub
from app.platform.live.view import EntityView, JobView, MessageView, Seen

__all__ = [
    "Delivery",
    "EntityView",
    "Feed",
    "Hub",
    "JobView",
    "LimitReached",
    "LiveConnection",
    "MessageView",
    "RedisChangeBus",
    "ReplayUnavailable",
    "Seen",
    "UserConnections",
    "follow",
]
