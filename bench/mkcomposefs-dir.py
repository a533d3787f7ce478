#!/usr/bin/env python3
"""Directory mode speed: `mkcomposefs --digest-store` (ours against the reference).

Usage: python3 bench/mkcomposefs-dir.py [--rounds N] [--threads T] [--work DIR]
                                         [--no-digest-only] [--wait-idle] [SOURCE]

Builds our mkcomposefs in release mode. Each round runs every variant once, interleaved:
both tools with `--threads=T --digest-store=STORE SOURCE IMAGE` on an empty store (removed,
then `sync`ed, before every run), and, unless --no-digest-only, both with
`--print-digest-only` (no store: scanning and hashing alone). Before every run the source
is read once so that it is in the page cache. Prints the median wall, user and system time
of each variant and the ratio of ours to the reference, and checks that the two images and
the two stores (object names and sizes) are identical. SOURCE defaults to /usr; the work
directory (default /var/tmp/mkcomposefs-bench) should be on the same filesystem as real
stores. With --wait-idle, each round starts only once the machine is idle.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle import busy_fraction, wait_idle  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target", "release", "mkcomposefs")
REFERENCE = os.path.join(os.environ.get("COMPOSEFS_REFERENCE_BIN",
                                        os.path.expanduser("~/.cache/composefs-reference/bin")),
                         "mkcomposefs")


def warm(source):
    """Reads every regular file once (page cache) and counts entries and bytes."""
    entries = size = 0
    for dirpath, dirnames, filenames in os.walk(source):
        entries += len(dirnames) + len(filenames)
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                with open(path, "rb", buffering=0) as f:
                    while True:
                        chunk = f.read(1 << 20)
                        if not chunk:
                            break
                        size += len(chunk)
            except OSError:
                pass
    return entries, size


def store_listing(store):
    out = {}
    for dirpath, _, filenames in os.walk(store):
        for name in filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, store)] = os.path.getsize(path)
    return out


def timed(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{cmd}: {proc.stderr.decode(errors='replace')}")
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, proc.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--work", default="/var/tmp/mkcomposefs-bench")
    p.add_argument("--no-digest-only", action="store_true")
    p.add_argument("--wait-idle", action="store_true")
    p.add_argument("source", nargs="?", default="/usr")
    a = p.parse_args()

    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "composefs-tools",
                    "--bin", "mkcomposefs"], cwd=ROOT, check=True)
    os.makedirs(a.work, exist_ok=True)
    tools = {"reference": REFERENCE, "ours": OURS}
    variants = {}
    for name, tool in tools.items():
        variants[f"{name}, --digest-store"] = (name, True, tool)
    if not a.no_digest_only:
        for name, tool in tools.items():
            variants[f"{name}, --print-digest-only"] = (name, False, tool)
    times = {k: [] for k in variants}
    entries, size = warm(a.source)
    print(f"source {a.source}: {entries} entries, {size / 1e9:.2f} GB of regular files; "
          f"threads {a.threads}", flush=True)
    for r in range(a.rounds):
        if a.wait_idle:
            wait_idle()
        outputs = {}
        for label, (name, with_store, tool) in variants.items():
            store = os.path.join(a.work, f"store-{name}")
            image = os.path.join(a.work, f"image-{name}.cfs")
            shutil.rmtree(store, ignore_errors=True)
            subprocess.run(["sync"], check=True)
            warm(a.source)
            cmd = [tool, f"--threads={a.threads}"]
            if with_store:
                cmd += [f"--digest-store={store}", a.source, image]
            else:
                cmd += ["--print-digest-only", a.source]
            wall, user, sys_, _ = timed(cmd)
            times[label].append((wall, user, sys_))
            print(f"round {r + 1}: {label}: {wall:.2f} s wall, {user:.2f} s user, "
                  f"{sys_:.2f} s sys", flush=True)
            if with_store:
                with open(image, "rb") as f:
                    outputs.setdefault("image", {})[name] = f.read()
                outputs.setdefault("store", {})[name] = store_listing(store)
        for what, by_tool in outputs.items():
            if by_tool["ours"] != by_tool["reference"]:
                sys.exit(f"round {r + 1}: the {what}s differ")
        print(f"round {r + 1}: images and stores identical "
              f"({len(outputs['store']['ours'])} objects)", flush=True)
    print()
    print("| variant | median wall s | median user s | median sys s | ratio (wall) |")
    print("|---|---|---|---|---|")
    for label, runs in times.items():
        wall = statistics.median(x[0] for x in runs)
        user = statistics.median(x[1] for x in runs)
        sys_ = statistics.median(x[2] for x in runs)
        ref_label = label.replace("ours", "reference")
        ref = statistics.median(x[0] for x in times[ref_label])
        print(f"| {label} | {wall:.2f} | {user:.2f} | {sys_:.2f} | {wall / ref:.2f} |")


if __name__ == "__main__":
    main()
