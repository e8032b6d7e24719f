"""The rebate rules: programs, eligibility, volume arithmetic, accruals, settlements. No I/O."""
