"""The public functions, grouped by provider."""
