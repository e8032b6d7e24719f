"""The rebates HTTP surface: programs, accruals and settlements."""
