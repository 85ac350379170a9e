"""zenloop's core: plain Python, no ZenML.

OpenMP threads (scikit-learn's histogram boosting, XGBoost) wait for work asleep rather
than spinning: on a machine the service, the monitor and the traffic share, spinning
threads fought them for the cores and a retraining's boosting fit ran 5-15x slower with
two threads than with one. The runtime reads the setting once, when it loads, so it is
set here, before anything imports scikit-learn; a value already in the environment wins.
"""

import os

OPENMP_WAIT_POLICY = "PASSIVE"

os.environ.setdefault("OMP_WAIT_POLICY", OPENMP_WAIT_POLICY)
