"""The operations page: one place where an operator sees what zenloop serves and did.

A small FastAPI app (`ui.server.create_app`) with read-only JSON endpoints under /api and
a Dash page on top of them. It reads the prediction service over HTTP, the prediction
log and the monitor's records from their database; it changes nothing without the
service's admin token.
"""
