"""Settings of the rebates service (``O2C_REBATES_`` environment prefix), failing fast."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RebatesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O2C_REBATES_", extra="ignore")

    coop_expiry_check_seconds: float = Field(
        5.0, gt=0, description="How often co-op funds are checked for their program's expiry date.")
