"""The generic platform: stores, entity registry, permissions, secure entity service, auth.

Nothing in this package knows about tutoring; packs (``app.tutoring``) are data and rules
installed on top of it.
"""
