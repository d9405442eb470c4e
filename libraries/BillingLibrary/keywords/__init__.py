"""BillingLibrary's keyword components, one per domain of the billing API."""
