"""The report rules on their own: periods, aging buckets, ratios."""

from __future__ import annotations

from datetime import date

import pytest

from services.projections.domain import aging
from services.projections.domain.periods import Period, compared
from services.projections.domain.scorecards import growth_bp, ratio_bp, target_of


def test_the_compared_period() -> None:
    quarter = Period(date(2025, 1, 1), date(2025, 3, 31))
    assert compared(quarter, "previous_period") == Period(date(2024, 10, 3), date(2024, 12, 31))
    assert compared(quarter, "previous_period").days == quarter.days == 90
    assert compared(quarter, "previous_year") == Period(date(2024, 1, 1), date(2024, 3, 31))
    leap = Period(date(2024, 2, 29), date(2024, 2, 29))
    assert compared(leap, "previous_year") == Period(date(2023, 2, 28), date(2023, 2, 28))


def test_default_buckets_keep_the_aging_everyone_knows() -> None:
    names = aging.bucket_names(aging.DEFAULT_BOUNDS, "due")
    assert names == ["current_minor", "d1_30_minor", "d31_60_minor", "d61_90_minor", "d90_plus_minor"]
    ages = (-3, 0, 1, 30, 31, 90, 91)
    assert [names[aging.bucket_of(age, aging.DEFAULT_BOUNDS, "due")] for age in ages] == [
        "current_minor", "current_minor", "d1_30_minor", "d1_30_minor", "d31_60_minor", "d61_90_minor",
        "d90_plus_minor"]
    by_issue = aging.bucket_names((7, 45), "invoice")
    assert by_issue == ["d0_7_minor", "d8_45_minor", "d45_plus_minor"]
    assert [by_issue[aging.bucket_of(age, (7, 45), "invoice")] for age in (0, 7, 8, 45, 46)] == [
        "d0_7_minor", "d0_7_minor", "d8_45_minor", "d8_45_minor", "d45_plus_minor"]


def test_money_on_account_is_its_own_column_and_the_total_is_the_balance() -> None:
    def invoice(partner_id: str, total: int, due_on: str) -> dict[str, object]:
        return {"partner_id": partner_id, "currency": "CNY", "total_minor": total, "written_off_minor": 0,
                "issued_on": "2025-01-01", "due_on": due_on, "paid_on": None, "settlements": {}}

    as_of = date(2025, 3, 31)
    owed = [invoice("p1", 1_000, "2025-03-20"), invoice("p1", 500, "2025-04-30"),
            invoice("p2", 300, "2025-01-10")]
    balances = {"p1": 1_200, "p2": 300, "p3": -700}  # p1: 300 on account; p3: an advance, nothing open
    money = aging.on_account(owed, balances, as_of)
    assert money == {"p1": 300, "p2": 0, "p3": 700}
    rows = aging.aging(owed, as_of, money_on_account=money)
    assert [(r["partner_id"], r["current_minor"], r["d1_30_minor"], r["d61_90_minor"], r["on_account_minor"],
             r["total_minor"]) for r in rows] == [
        ("p1", 500, 1_000, 0, 300, 1_200), ("p2", 0, 0, 300, 0, 300), ("p3", 0, 0, 0, 700, -700)]
    assert [r["total_minor"] for r in rows] == [balances[r["partner_id"]] for r in rows]
    assert [r["total_minor"] for r in aging.aging(owed, as_of)] == [1_500, 300]  # no money on account


@pytest.mark.parametrize("text", ["", "30,,60", "60,30", "30,30", "0", "x", "1.5", "3651",
                                  ",".join(str(n) for n in range(1, 14))])
def test_bad_buckets_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        aging.parse_bounds(text)


def test_ratios_round_half_up_and_say_nothing_without_a_base() -> None:
    assert (ratio_bp(1, 3), ratio_bp(2, 3), ratio_bp(1, 0), ratio_bp(1, None)) == (3333, 6667, None, None)
    assert (growth_bp(50, 30), growth_bp(0, 30), growth_bp(10, 0)) == (6667, -10_000, None)


def test_the_target_is_the_latest_agreement_in_force() -> None:
    agreements = [
        {"starts_on": "2024-01-01", "ends_on": "2024-12-31", "annual_target_minor": 100},
        {"starts_on": "2025-01-01", "ends_on": "2025-06-30", "annual_target_minor": None},
        {"starts_on": "2025-03-01", "ends_on": "2025-12-31", "annual_target_minor": 300},
    ]
    assert target_of(agreements, Period(date(2024, 6, 1), date(2024, 6, 30))) == 100
    assert target_of(agreements, Period(date(2025, 1, 1), date(2025, 2, 1))) is None
    assert target_of(agreements, Period(date(2025, 1, 1), date(2025, 12, 31))) == 300
    assert target_of(agreements, Period(date(2026, 1, 1), date(2026, 1, 31))) is None
