"""The spec language: pydantic models, safe YAML loading, semantic checks, JSON Schema."""
