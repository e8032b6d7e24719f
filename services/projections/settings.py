"""Settings of the projections service (``O2C_PROJECTIONS_`` environment prefix), failing fast."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.projections.domain.webhooks import RetryPolicy


class ProjectionsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O2C_PROJECTIONS_", extra="ignore")

    webhook_allow_loopback_http: bool = Field(
        False, description="Accept plain http:// webhook URLs to loopback hosts (development, "
                           "tests); otherwise every webhook URL must be https://.")
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60,
                                           description="Per-request timeout of a push.")
    webhook_concurrency: int = Field(8, ge=1, le=100, description="Pushes in flight at once.")
    webhook_poll_seconds: float = Field(1.0, gt=0, description="How often due pushes are looked for.")
    webhook_retry_base_seconds: float = Field(
        10.0, gt=0, description="Backoff after the first failed attempt; doubles per attempt.")
    webhook_retry_cap_seconds: float = Field(3600.0, gt=0, description="Longest wait between attempts.")
    webhook_retry_window_seconds: float = Field(
        25 * 3600.0, ge=0, description="How long a push is retried before it is marked failed "
                                       "(at least 24 hours in production).")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.webhook_retry_base_seconds, self.webhook_retry_cap_seconds,
                           self.webhook_retry_window_seconds)
