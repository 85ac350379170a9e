"""Monitoring library: the prediction log, drift checks, the retrain policy and plans.

Library code only: nothing here starts a process or a pipeline run.
"""
