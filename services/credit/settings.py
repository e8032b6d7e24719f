"""Settings of the credit service (``O2C_CREDIT_`` environment prefix), failing fast."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.credit.domain.receipts import BACKDATE_DAYS
from services.credit.domain.write_offs import RESIDUE_THRESHOLD_MINOR


class CreditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O2C_CREDIT_", extra="ignore")

    receipt_backdate_days: int = Field(
        BACKDATE_DAYS, ge=0, le=3650,
        description="How many days before today a receipt's received_on may be (never before the "
                    "account opened, never after today).")
    write_off_threshold_minor: int = Field(
        RESIDUE_THRESHOLD_MINOR, ge=0,
        description="Write-offs up to this amount (minor units) apply at once; larger ones are "
                    "proposed and need a second finance key.")
