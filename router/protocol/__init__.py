"""OpenAI-compatible wire models (pydantic), one module per endpoint."""
