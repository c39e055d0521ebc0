"""Credits: a ledger per tenant, admission checks, usage."""
