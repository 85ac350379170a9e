"""Monitoring: the durable prediction log (and, next, drift checks and the retrain policy)."""
