#!/usr/bin/env python3
"""composefs-info speed on the cs9-x86_64-developer image: ours against the reference.

Usage: python3 bench/composefs-info.py [--rounds N] [--wait-idle] [--workdir DIR]

Builds composefs-info and mkcomposefs in release mode, builds the image from
tests/data/upstream/cs9-x86_64-developer.dump.gz with our mkcomposefs (byte for byte the
reference's image, which is checked), checks that our `dump` prints exactly what the
reference prints, then runs every variant once per round, interleaved, output to
/dev/null, and prints for each the median wall time and median CPU time (user + system),
and their ratios to the reference's `composefs-info dump`. With --wait-idle, each round
starts only once the machine has been idle (under 10 % CPU use over half a second).
"""
import argparse
import gzip
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle import busy_fraction, wait_idle  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
REFERENCE = os.environ.get(
    "COMPOSEFS_REFERENCE_BIN", os.path.expanduser("~/.cache/composefs-reference/bin"))
ASSET = os.path.join(ROOT, "tests", "data", "upstream", "cs9-x86_64-developer.dump.gz")


def timed(cmd):
    """Runs cmd with stdout to /dev/null; returns (wall s, cpu s, exit status)."""
    with open(os.devnull, "wb") as null:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=null)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    return wall, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--wait-idle", action="store_true")
    p.add_argument("--workdir", default="/var/tmp/composefs-info-bench")
    a = p.parse_args()

    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "composefs-tools",
                    "--bin", "composefs-info", "--bin", "mkcomposefs"], cwd=ROOT, check=True)
    ours = os.path.join(RELEASE, "composefs-info")
    theirs = os.path.join(REFERENCE, "composefs-info")
    os.makedirs(a.workdir, exist_ok=True)
    dump = os.path.join(a.workdir, "cs9-x86_64-developer.dump")
    image = os.path.join(a.workdir, "cs9-x86_64-developer.img")
    with gzip.open(ASSET) as src, open(dump, "wb") as dst:
        dst.write(src.read())
    subprocess.run([os.path.join(RELEASE, "mkcomposefs"), "--from-file", dump, image],
                   check=True)
    ref_image = image + ".ref"
    subprocess.run([os.path.join(REFERENCE, "mkcomposefs"), "--from-file", dump, ref_image],
                   check=True)
    with open(image, "rb") as f1, open(ref_image, "rb") as f2:
        if f1.read() != f2.read():
            print("our image differs from the reference's")
            return 1
    a_out = subprocess.run([ours, "dump", image], check=True, capture_output=True).stdout
    b_out = subprocess.run([theirs, "dump", image], check=True, capture_output=True).stdout
    if a_out != b_out:
        print("our dump differs from the reference's")
        return 1

    variants = {
        "reference composefs-info dump": [theirs, "dump", image],
        "ours: composefs-info dump": [ours, "dump", image],
        "ours: composefs-info ls": [ours, "ls", image],
        "ours: composefs-info fsck": [ours, "fsck", image],
        "ours: composefs-info fsck --canonical": [ours, "fsck", "--canonical", image],
    }
    walls = {k: [] for k in variants}
    cpus = {k: [] for k in variants}
    for name, cmd in variants.items():  # warm the page cache and the binaries
        timed(cmd)
    for _ in range(a.rounds):
        if a.wait_idle:
            wait_idle()
        for name, cmd in variants.items():
            wall, cpu, code = timed(cmd)
            if code != 0:
                print(f"{name}: exit status {code}")
                return 1
            walls[name].append(wall)
            cpus[name].append(cpu)
    base_wall = statistics.median(walls["reference composefs-info dump"])
    base_cpu = statistics.median(cpus["reference composefs-info dump"])
    print(f"image: {image}, {os.path.getsize(image)} bytes, {a.rounds} interleaved rounds")
    print(f"{'variant':<40} {'wall ms':>8} {'min':>6} {'ratio':>6} {'cpu ms':>8} {'ratio':>6}")
    for name in variants:
        w, c = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"{name:<40} {w * 1e3:8.1f} {min(walls[name]) * 1e3:6.1f} {w / base_wall:6.2f} "
              f"{c * 1e3:8.1f} {c / base_cpu:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
