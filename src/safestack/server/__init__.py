"""The HTTP gateway: OpenAI-compatible endpoints with the guard, keys, rate limits and audit."""
