"""Settings of the orders service (``O2C_ORDERS_`` environment prefix), failing fast."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.orders.domain.notices import NOTICE_DAYS


class OrdersSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O2C_ORDERS_", extra="ignore")

    price_notice_days: int = Field(
        NOTICE_DAYS, ge=0, le=365,
        description="A price-list version must be published at least this many days before it "
                    "takes effect, unless sales gives an override_reason.")
