"""Workflow jobs of the tutoring pack: when they are scheduled and what they do."""
