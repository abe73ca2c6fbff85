"""The TWS / IB Gateway protocol test server now lives in the package, `trading_workbench.testing.tws_server`
(written by `nbs/35_testing_tws_server.ipynb`), so notebooks and tests import the same code; tests keep importing it
from here."""
from trading_workbench.testing.tws_server import (  # noqa: F401
    UNSET_DOUBLE, Faults, Plan, SrvExec, SrvOrder, TWSServer, fmt, frame, log)
