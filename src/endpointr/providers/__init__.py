"""One module per provider; one class per endpoint (provider x task)."""
