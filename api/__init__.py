"""The FastAPI prediction service: serves the champion, logs every prediction, hot-reloads."""
