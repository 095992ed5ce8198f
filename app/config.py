"""Configuration from the environment (names fixed by the contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.platform.auth import ClaimNames


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    mongodb_url: str | None = None
    mongodb_db: str = "tutoring"
    redis_url: str | None = None
    auth_dev_secret: str | None = Field(default=None, min_length=32)
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_claim_user: str = "sub"
    auth_claim_org: str = "org_id"
    auth_claim_roles: str = "roles"
    auth_role_prefix: str = "org:"
    tutoring_env: Literal["development", "production"] = "development"
    agent_base_url: str | None = None
    agent_model: str | None = None
    agent_api_key: str | None = None

    @property
    def claim_names(self) -> ClaimNames:
        return ClaimNames(
            self.auth_claim_user, self.auth_claim_org, self.auth_claim_roles, self.auth_role_prefix
        )

    def production_problems(self) -> list[str]:
        """Reasons to refuse to start in production; empty when all is well."""
        if self.tutoring_env != "production":
            return []
        problems = []
        if not self.mongodb_url:
            problems.append("MONGODB_URL is unset: the in-memory store loses all data")
        if not self.redis_url:
            problems.append("REDIS_URL is unset: the embedded Redis is for development only")
        if self.auth_dev_secret:
            problems.append("AUTH_DEV_SECRET is set: anyone with it can mint tokens")
        if not self.auth_jwks_url:
            problems.append("AUTH_JWKS_URL is unset: no tokens could be verified")
        return problems

    def auth_problems(self) -> list[str]:
        """Misconfigurations refused in every environment."""
        if self.auth_jwks_url and not (self.auth_issuer and self.auth_audience):
            return [
                "AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE, or tokens minted by "
                "the provider for other applications would be accepted"
            ]
        return []
