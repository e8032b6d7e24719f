"""rebates: programs, accruals with their sources, period close, settlements."""
