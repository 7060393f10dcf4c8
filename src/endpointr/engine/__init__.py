"""The async core: scheduling, retries, rate limits and the HTTP transport."""
