"""Machine load for the benchmark scripts: how busy the CPUs are, and waiting until they
are idle, so that a round starts on a quiet machine (other builds share it)."""
import time


def busy_fraction(interval=0.5):
    """Fraction of all CPU time spent non-idle over `interval` seconds."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(interval)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def wait_idle(limit_s=600, threshold=0.10):
    """Waits until the machine is idle (busy under `threshold`), at most `limit_s`
    seconds; returns the busy fraction seen last and how long it waited."""
    start = time.monotonic()
    busy = busy_fraction()
    while busy > threshold and time.monotonic() - start < limit_s:
        time.sleep(1)
        busy = busy_fraction()
    return busy, time.monotonic() - start
