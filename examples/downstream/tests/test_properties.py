"""Property-based failover: Hypothesis draws fault schedules, Warren plays each one in
virtual time against the service's own code (orders.warren_adapter) and checks the
history; a failure is shrunk to a minimal schedule and printed with its replay command."""

from __future__ import annotations

from hypothesis import given, settings
from orders.warren_adapter import OrdersAdapter

from scenarios.strategies import PHASES, check, fault_schedules

# deadline=None: a run's wall time depends on its schedule, not on a bug.
# derandomize=True, database=None: the same examples on every CI run (a gate, not a lottery).
# phases=PHASES: all but "explain", whose line tracing makes every run many times slower.
CI = settings(deadline=None, derandomize=True, database=None, phases=PHASES, max_examples=8)


@CI
@given(fault_schedules(nodes=3, max_faults=2, kinds=("kill", "stop", "pause")))
def test_no_confirmed_order_is_lost_whatever_the_node_faults(schedule):
    check(OrdersAdapter(), schedule)
