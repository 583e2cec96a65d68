"""The OpenAI-compatible HTTP gateway: `serving` (logic), `api_router` (FastAPI), `app`."""
