"""Settings of the partners service (``O2C_PARTNERS_`` environment prefix), failing fast."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PartnersSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O2C_PARTNERS_", extra="ignore")

    trial_check_seconds: float = Field(
        5.0, gt=0, description="How often running trials are checked for their end date.")
