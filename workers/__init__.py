"""arq worker settings live here (job handlers live in the tutoring pack)."""
