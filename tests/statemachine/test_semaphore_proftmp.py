import time, statistics, cProfile, pstats, threading
from collections import defaultdict
def test_prof(semaphore_probe):
    probe = semaphore_probe(limit=3)
    machine = probe.create_state_machine(fallback_seconds=45)
    pr = cProfile.Profile()
    t=time.monotonic()
    executions = [probe.start(machine, f"probe-{i:02d}", work_seconds=0.15) for i in range(40)]
    print("start took", time.monotonic()-t)
    statuses = probe.wait_for(executions, timeout=60)
    print("elapsed", time.monotonic()-t, set(statuses.values()))
    by = defaultdict(list)
    for inv in probe.adapter.invocations: by[inv.function_name].append(inv.duration)
    for k,v in by.items(): print(k, len(v), "mean %.3f max %.3f" % (statistics.mean(v), max(v)))
