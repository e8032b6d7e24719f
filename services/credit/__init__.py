"""credit: accounts, funds review, holds, invoices, payments, credit notes, statements."""
