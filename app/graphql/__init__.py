"""The GraphQL transport: translates HTTP and GraphQL to the platform and the pack, and holds
no business rule of its own."""
