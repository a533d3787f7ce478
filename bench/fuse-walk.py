#!/usr/bin/env python3
"""composefs-fuse against the kernel mount (EROFS + overlayfs) of the same image.

Usage: python3 bench/fuse-walk.py [--rounds N] [--wait-idle] [--verity] IMAGE STORE

Builds composefs-fuse in release mode (root required to mount), reads every object of
STORE once so that the backing files are in the page cache, then runs, once per round and
interleaved, for each mount kind (the kernel; composefs-fuse with passthrough, the
default; composefs-fuse with `nopassthrough`): mount the image freshly, time `find` over
the tree, time reading every regular file (`find -type f` piped to `xargs cat`),
unmount. Each round thus starts with cold mount caches and warm backing files. Prints the
median and minimum of each timing and the ratio of the medians (FUSE / kernel). With --verity, composefs-fuse also
verifies every object's fs-verity digest when it is opened (the kernel mount cannot, on a
filesystem without fs-verity). With --wait-idle, each round starts only once the machine has
been idle (under 10 % CPU use over half a second), for shared machines.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle import busy_fraction, wait_idle  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUSE = os.path.join(ROOT, "target", "release", "composefs-fuse")


def is_mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def timed(shell):
    t = time.monotonic()
    subprocess.run(["sh", "-c", shell], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def mount_kernel(image, store, mnt):
    lower = mnt + ".erofs"
    os.makedirs(lower, exist_ok=True)
    subprocess.run(["mount", "-t", "erofs", "-o", "ro", image, lower], check=True)
    subprocess.run(["mount", "-t", "overlay", "composefs", "-o",
                    f"ro,metacopy=on,redirect_dir=on,lowerdir+={lower},datadir+={store}",
                    mnt], check=True)
    return lambda: (subprocess.run(["umount", mnt], check=True),
                    subprocess.run(["umount", lower], check=True))


def mount_fuse(image, store, mnt, verity, passthrough):
    opts = (f"source={image},basedir={store}" + (",verity" if verity else "")
            + ("" if passthrough else ",nopassthrough"))
    proc = subprocess.Popen([FUSE, "-o", opts, mnt])
    while not is_mounted(mnt):
        if proc.poll() is not None:
            sys.exit(f"composefs-fuse exited with {proc.returncode}")
        time.sleep(0.01)

    def stop():
        subprocess.run(["umount", mnt], check=True)
        proc.wait(timeout=30)
    return stop


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--wait-idle", action="store_true")
    p.add_argument("--verity", action="store_true")
    p.add_argument("image")
    p.add_argument("store")
    a = p.parse_args()
    image, store = os.path.abspath(a.image), os.path.abspath(a.store)

    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "composefs-tools",
                    "--bin", "composefs-fuse"], cwd=ROOT, check=True)
    timed(f"find '{store}' -type f -print0 | xargs -0 cat")
    work = tempfile.mkdtemp(prefix="fuse-walk.")
    kinds = {
        "kernel": lambda m: mount_kernel(image, store, m),
        "composefs-fuse": lambda m: mount_fuse(image, store, m, a.verity, True),
        "composefs-fuse nopassthrough": lambda m: mount_fuse(image, store, m, a.verity,
                                                             False),
    }
    times = {(k, op): [] for k in kinds for op in ("find", "read")}
    counts = {}
    for r in range(a.rounds):
        if a.wait_idle:
            wait_idle()
        for kind, mount in kinds.items():
            mnt = os.path.join(work, kind.replace(" ", "-"))
            os.makedirs(mnt, exist_ok=True)
            stop = mount(mnt)
            try:
                times[(kind, "find")].append(timed(f"find '{mnt}'"))
                times[(kind, "read")].append(
                    timed(f"find '{mnt}' -type f -print0 | xargs -0 -n 256 cat"))
                if r == 0:
                    out = subprocess.run(["sh", "-c", f"find '{mnt}' | wc -l"],
                                         check=True, capture_output=True, text=True)
                    counts[kind] = int(out.stdout)
            finally:
                stop()
        print(f"round {r + 1}: " + ", ".join(
            f"{k}/{op} {v[-1]:.3f}s" for (k, op), v in times.items()), file=sys.stderr)
    if len(set(counts.values())) != 1:
        sys.exit(f"the mounts list different trees: {counts}")
    print(f"entries: {counts['kernel']}")
    fuses = [k for k in kinds if k != "kernel"]
    print("| operation | kernel median s (min) | "
          + " | ".join(f"{k} median s (min) | ratio" for k in fuses) + " |")
    print("|---|---|" + "---|---|" * len(fuses))
    for op in ("find", "read"):
        k = times[("kernel", op)]
        cells = [f"{statistics.median(k):.3f} ({min(k):.3f})"]
        for fuse in fuses:
            f = times[(fuse, op)]
            cells += [f"{statistics.median(f):.3f} ({min(f):.3f})",
                      f"{statistics.median(f) / statistics.median(k):.2f}"]
        print(f"| {op} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
