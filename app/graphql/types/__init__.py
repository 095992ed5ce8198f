"""GraphQL object types for the tutoring entities, wrapping masked ``Entity`` values."""
