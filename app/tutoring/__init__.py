"""The tutoring pack: entity types, roles and the business rules of a tutoring company."""
