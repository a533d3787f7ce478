#!/usr/bin/env python3
"""fs-verity digest speed: our `verity-digest` example against `fsverity digest`.

Usage: python3 bench/verity-digest.py [--rounds N] [--size-mib M] [--wait-idle] [FILE]

Builds the example in release mode, creates FILE (default /var/tmp/verity-bench.bin,
M MiB of random bytes, default 1024) if it does not exist, reads it once so that it is in
the page cache, then runs every variant once per round, interleaved, and prints the
median wall time of each, its ratio to fsverity's median, and the digests (which must all
agree). With --wait-idle, each round starts only once the machine has been idle (under
10 % CPU use over half a second), for shared machines.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle import busy_fraction, wait_idle  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "target", "release", "examples", "verity-digest")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--wait-idle", action="store_true")
    p.add_argument("file", nargs="?", default="/var/tmp/verity-bench.bin")
    a = p.parse_args()

    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "composefs-std",
                    "--example", "verity-digest"], cwd=ROOT, check=True)
    if not os.path.exists(a.file) or os.path.getsize(a.file) != a.size_mib << 20:
        with open(a.file, "wb") as f:
            for _ in range(a.size_mib):
                f.write(os.urandom(1 << 20))
    with open(a.file, "rb") as f:
        while f.read(1 << 24):
            pass

    variants = {
        "fsverity digest": ["fsverity", "digest", "--compact", "--hash-alg=sha256",
                            "--block-size=4096", a.file],
        "ours, 1 thread, pread": [EXAMPLE, "--threads", "1", a.file],
        "ours, 1 thread, mmap": [EXAMPLE, "--threads", "1", "--mmap", a.file],
        "ours, 2 threads, pread": [EXAMPLE, "--threads", "2", a.file],
        "ours, 2 threads, mmap": [EXAMPLE, "--threads", "2", "--mmap", a.file],
        "plain SHA-256 (sha2)": [EXAMPLE, "--plain-sha256", a.file],
    }
    # The same one-thread digests with each block-hashing engine pinned (the default
    # times them at start-up and keeps the fastest).
    env = {}
    for engine in ("sha-ni", "portable"):
        for method, extra in (("pread", []), ("mmap", ["--mmap"])):
            name = f"1 thread, {method}, {engine}"
            variants[name] = [EXAMPLE, "--threads", "1", *extra, a.file]
            env[name] = dict(os.environ, COMPOSEFS_VERITY_ENGINE=engine)
    times = {k: [] for k in variants}
    digests = {}
    for _ in range(a.rounds):
        if a.wait_idle:
            wait_idle()
        for name, cmd in variants.items():
            t = time.perf_counter()
            out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                 env=env.get(name)).stdout
            times[name].append(time.perf_counter() - t)
            if not name.startswith("plain"):
                digests.setdefault(out.split()[0], []).append(name)
    base = statistics.median(times["fsverity digest"])
    size = os.path.getsize(a.file)
    print(f"file: {a.file}, {size} bytes, {a.rounds} interleaved rounds")
    print(f"{'variant':<26} {'median s':>9} {'min s':>7} {'max s':>7} {'MB/s':>7} {'ratio':>6}")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:<26} {m:9.3f} {min(ts):7.3f} {max(ts):7.3f} {size / m / 1e6:7.0f} "
              f"{m / base:6.2f}")
    if len(digests) != 1:
        print(f"DIGESTS DISAGREE: {digests}")
        return 1
    print(f"digest: {next(iter(digests))} (all variants agree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
