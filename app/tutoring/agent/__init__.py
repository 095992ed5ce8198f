"""The tutoring agent: tools, the prompt template and the agent loop, all acting as the user."""
