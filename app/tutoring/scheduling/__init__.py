"""Scheduling: when a session may take place, booking it race-free, and moving it."""
