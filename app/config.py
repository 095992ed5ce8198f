"""Configuration from the environment (names fixed by the contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator
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
    auth_jwks_timeout_seconds: float = Field(default=5.0, gt=0)
    auth_jwks_wait_seconds: float = Field(default=0.5, gt=0)
    auth_jwks_min_refresh_seconds: float = Field(default=60.0, ge=0)
    auth_jwks_max_age_seconds: float = Field(default=900.0, gt=0)
    auth_jwks_max_bytes: int = Field(default=1_000_000, gt=0)
    tutoring_env: Literal["development", "production"] = "development"
    graphql_max_cost: int = Field(default=10_000, ge=1)
    graphql_max_nodes: int = Field(default=20_000, ge=1)
    graphql_timeout_seconds: float = Field(default=10.0, gt=0)
    rate_limit_user_per_minute: int = Field(default=600, ge=0)
    rate_limit_org_per_minute: int = Field(default=6000, ge=0)
    # Live updates (GraphQL subscriptions over websockets): see README "Subscriptions".
    live_max_connections_per_user: int = Field(default=10, ge=1)
    live_max_subscriptions_per_connection: int = Field(default=20, ge=1)
    live_max_pending_events: int = Field(default=200, ge=1)
    live_init_timeout_seconds: float = Field(default=10.0, gt=0)
    live_replay_events: int = Field(default=1000, ge=0)
    # Persisted operations: automatic persisted queries and trusted documents.
    graphql_apq_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    graphql_apq_max_documents: int = Field(default=2000, ge=1)
    graphql_apq_max_bytes: int = Field(default=64 * 1024, ge=1)
    graphql_trusted_documents: str | None = None
    graphql_trusted_documents_only: bool = False
    agent_base_url: str | None = None
    agent_model: str | None = None
    agent_api_key: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_token: str | None = Field(default=None, min_length=16)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    otel_exporter_otlp_endpoint: str | None = None
    startup_timeout_seconds: float = Field(default=30.0, ge=0)
    tutoring_orgs: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def orgs(self) -> list[str]:
        """``TUTORING_ORGS``: organizations to install the pack into at start."""
        return [o.strip() for o in (self.tutoring_orgs or "").split(",") if o.strip()]

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
        problems = []
        if self.auth_jwks_url and not (self.auth_issuer and self.auth_audience):
            problems.append(
                "AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE, or tokens minted by "
                "the provider for other applications would be accepted"
            )
        if self.graphql_trusted_documents_only and not self.graphql_trusted_documents:
            problems.append(
                "GRAPHQL_TRUSTED_DOCUMENTS_ONLY is set but GRAPHQL_TRUSTED_DOCUMENTS is not: "
                "no operation could run"
            )
        return problems


# How to fix each kind of bad value, for the one-line refusal at start.
_HINTS = {
    "literal_error": "use one of the listed values",
    "string_too_short": "use a longer value",
    "int_parsing": "use a whole number",
    "float_parsing": "use a number",
    "greater_than_equal": "use a larger number",
    "less_than_equal": "use a smaller number",
    "greater_than": "use a larger number",
}


def load_settings() -> Settings:
    """Settings from the environment, or ``ConfigurationProblem`` with one line per bad
    variable naming it and what to do (never a pydantic traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "(settings)"
            hint = _HINTS.get(error["type"], "fix or unset it")
            lines.append(f"{name} is invalid: {error['msg']}; {hint}.")
        raise ConfigurationProblem(lines) from None


class ConfigurationProblem(Exception):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
