#!/usr/bin/env python3
"""Side-by-side benchmark: ours against the reference C tools (composefs 1.0.8) and
composefs-rs 0.9.4 (crates.io `composefs`), on five tasks.

Usage: python3 bench/compare.py [--rounds N] [--slow-rounds N]
                                [--wait-idle [--idle-limit S] [--idle-threshold F]]
                                [--reference-bin DIR] [--work DIR] [--tree-source DIR]
                                [--verity-mib M] [--threads N] [--tasks 1,2,3,4,5]
                                [--out DIR] [--no-build] [--ours-tools DIR]

One command, from a fresh machine:
  1. builds our release binaries (mkcomposefs, composefs-info, the `walk`, `parse` and
     `verity-digest` examples);
  2. installs the reference tools with ../shared/tools/reference-composefs (or takes
     them from --reference-bin);
  3. installs what the composefs-rs build needs (libssl-dev, pkg-config, a C compiler)
     with apt-get when missing, and fsverity-utils, then builds
     bench/composefs-rs-compare (its own Cargo.lock, never part of our workspace);
  4. prepares the inputs in --work (default /var/tmp/cfs-bench): the unzipped
     cs9-x86_64-developer dump, its payload-normalized copy (composefs-rs rejects the
     ostree `XX/<62 hex>.file` payloads; stripping `.file` makes a dump it accepts), the
     images, a 1 GiB random file, and a copy of --tree-source (default /usr/share);
  5. runs every variant once, unmeasured, and checks the outputs (images byte-identical,
     digests equal, walk totals equal, dumps compared);
  6. measures: per task, N rounds, each running every tool once (A B C A B C ...), with
     --wait-idle starting a round only once the machine is idle. Wall time, CPU time
     (user + sys) and peak RSS come from wait4() on the child.

Writes OUT/compare.md (the tables for BENCHMARKS.md: medians, each with its ratio to ours)
and OUT/compare.json (every sample, the checks, the machine and its load), and prints the
Markdown.
"""
import argparse
import datetime
import gzip
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle import busy_fraction, wait_idle  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
OURS = {
    "mkcomposefs": os.path.join(RELEASE, "mkcomposefs"),
    "composefs-info": os.path.join(RELEASE, "composefs-info"),
    "walk": os.path.join(RELEASE, "examples", "walk"),
    "parse": os.path.join(RELEASE, "examples", "parse"),
    "verity-digest": os.path.join(RELEASE, "examples", "verity-digest"),
}
RS_DIR = os.path.join(ROOT, "bench", "composefs-rs-compare")
RS = os.path.join(RS_DIR, "target", "release", "composefs-rs-compare")
RUSAGE = os.path.join(ROOT, "bench", "out", "rusage")
CS9 = os.path.join(ROOT, "tests", "data", "upstream", "cs9-x86_64-developer.dump.gz")
TOOLS = ["ours", "reference", "composefs-rs", "fsverity-utils"]
TOOL_TITLES = {
    "ours": "ours",
    "reference": "reference C 1.0.8",
    "composefs-rs": "composefs-rs 0.9.4",
    "fsverity-utils": "fsverity-utils",
}
# ostree payloads `XX/<62 hex>.file` -> `XX/<62 hex>`, on regular-file lines only: the
# sed of the notes, in Python.
NORMALIZE = re.compile(
    rb"^(\S+ \S+ 10[0-7]{4} \S+ \S+ \S+ \S+ \S+ [0-9a-f]{2}/[0-9a-f]{62})\.file ", re.M)


def log(msg):
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def sh(argv, **kw):
    log("$ " + " ".join(argv))
    return subprocess.run(argv, check=True, **kw)


# ---------------------------------------------------------------- machine and idleness

def machine():
    def first(path, key):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"
    def out(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "memory": first("/proc/meminfo", "MemTotal"),
        "kernel": platform.release(),
        "rustc": out(["rustc", "-V"]),
        "fsverity": out(["fsverity", "--version"]).splitlines()[0] if shutil.which("fsverity") else "?",
        "date": datetime.date.today().isoformat(),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }


# ---------------------------------------------------------------- setup

def apt_install(packages):
    log(f"installing {' '.join(packages)} with apt-get")
    sh(["apt-get", "update", "-qq"])
    sh(["apt-get", "install", "-y", "-qq", *packages])


def ensure_system_tools():
    missing = []
    if not shutil.which("cc"):
        missing.append("build-essential")
    if not shutil.which("pkg-config"):
        missing += ["pkg-config", "libssl-dev"]
    elif subprocess.run(["pkg-config", "--exists", "openssl"]).returncode != 0:
        missing.append("libssl-dev")
    if not shutil.which("fsverity"):
        missing.append("fsverity")
    if missing:
        apt_install(missing)


def reference_bin(arg):
    if arg:
        return os.path.abspath(arg)
    installer = os.path.join(ROOT, "..", "shared", "tools", "reference-composefs")
    if os.path.exists(installer):
        return sh([installer], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    for d in (os.environ.get("COMPOSEFS_REFERENCE_BIN"),
              os.path.expanduser("~/.cache/composefs-reference/bin")):
        if d and os.access(os.path.join(d, "mkcomposefs"), os.X_OK):
            return d
    sys.exit("compare: no reference tools: give --reference-bin DIR")


def reference_version(bindir):
    changelog = os.path.join(bindir, "..", "pkg", "usr", "share", "doc", "composefs",
                             "changelog.Debian.gz")
    try:
        with gzip.open(changelog, "rt") as f:
            return f.readline().split()[1].strip("()")
    except (OSError, IndexError):
        return "unknown"


def build_rusage():
    os.makedirs(os.path.dirname(RUSAGE), exist_ok=True)
    sh(["cc", "-O2", "-Wall", "-o", RUSAGE, os.path.join(ROOT, "bench", "rusage.c")])


def build():
    sh(["cargo", "build", "--quiet", "--release", "-p", "composefs-tools", "--bins"], cwd=ROOT)
    sh(["cargo", "build", "--quiet", "--release", "-p", "composefs-format", "--example", "walk",
        "--example", "parse"],
       cwd=ROOT)
    sh(["cargo", "build", "--quiet", "--release", "-p", "composefs-std", "--example",
        "verity-digest"], cwd=ROOT)
    sh(["cargo", "build", "--quiet", "--release", "--locked"], cwd=RS_DIR)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_through(path):
    """Reads every regular file under `path` (or `path` itself) once: page cache."""
    files = [path] if os.path.isfile(path) else (
        os.path.join(d, n) for d, _, ns in os.walk(path) for n in ns)
    for p in files:
        if os.path.isfile(p) and not os.path.islink(p):
            with open(p, "rb") as f:
                while f.read(1 << 20):
                    pass


class Inputs:
    def __init__(self, work, ref, tree_source, verity_mib, tasks):
        os.makedirs(work, exist_ok=True)
        self.work = work
        self.dump = os.path.join(work, "cs9.dump")
        self.norm = os.path.join(work, "cs9-norm.dump")
        self.image = os.path.join(work, "cs9.cfs")
        self.norm_image = os.path.join(work, "cs9-norm.cfs")
        self.big = os.path.join(work, f"random-{verity_mib}MiB.bin")
        self.tree = os.path.join(work, "tree")
        self.tree_source = tree_source
        with gzip.open(CS9, "rb") as f:
            text = f.read()
        with open(self.dump, "wb") as f:
            f.write(text)
        norm, n = NORMALIZE.subn(rb"\1 ", text)
        log(f"payload-normalized {n} regular-file lines")
        with open(self.norm, "wb") as f:
            f.write(norm)
        self.normalized_lines = n
        sh([os.path.join(ref, "mkcomposefs"), "--from-file", self.dump, self.image])
        sh([os.path.join(ref, "mkcomposefs"), "--from-file", self.norm, self.norm_image])
        if 4 in tasks:
            size = verity_mib << 20
            if not os.path.exists(self.big) or os.path.getsize(self.big) != size:
                log(f"writing {self.big}")
                with open(self.big, "wb") as f:
                    for _ in range(verity_mib):
                        f.write(os.urandom(1 << 20))
            read_through(self.big)
        if 5 in tasks:
            stamp = os.path.join(work, "tree.source")
            if not (os.path.exists(stamp) and open(stamp).read() == tree_source):
                shutil.rmtree(self.tree, ignore_errors=True)
                sh(["cp", "-a", tree_source, self.tree])
                with open(stamp, "w") as f:
                    f.write(tree_source)
            read_through(self.tree)
            self.tree_stats = tree_stats(self.tree)


def tree_stats(path):
    dirs = files = links = other = size = 0
    for d, ds, ns in os.walk(path):
        dirs += 1
        for n in ns:
            st = os.lstat(os.path.join(d, n))
            if os.path.islink(os.path.join(d, n)):
                links += 1
            elif os.path.isfile(os.path.join(d, n)):
                files += 1
                size += st.st_size
            else:
                other += 1
    return {"dirs": dirs, "files": files, "symlinks": links, "other": other, "bytes": size}


# ---------------------------------------------------------------- running

def run(argv, stdout_path=None):
    """Runs argv under the `rusage` launcher; returns wall, cpu, peak RSS, exit code and
    stderr."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as usage:
        out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
        try:
            subprocess.run([RUSAGE, usage.name, *argv], stdin=subprocess.DEVNULL, stdout=out,
                           stderr=err, check=True)
        finally:
            if stdout_path:
                out.close()
        wall, user, sys_, rss, rc = usage.read().split()
        err.seek(0)
        return {
            "wall": float(wall),
            "cpu": float(user) + float(sys_),
            "user": float(user),
            "sys": float(sys_),
            "rss_kib": int(rss),
            "rc": int(rc),
            "stderr": err.read().decode(errors="replace"),
        }


class Variant:
    """One tool's way of doing one task; `cannot` instead explains why it is not run."""

    def __init__(self, argv=None, stdout=None, before=None, cannot=None, note=None,
                 metric=None):
        self.argv, self.stdout, self.before = argv, stdout, before
        self.cannot, self.note = cannot, note
        # metric: a function of the run result giving the figure (default: wall time).
        self.metric = metric
        self.samples = []
        self.first = None


class Row:
    def __init__(self, key, task, title, input_, variants, base="ours", unit="s", rounds=None):
        self.key, self.task, self.title, self.input = key, task, title, input_
        self.variants = variants
        self.base = base
        self.unit = unit
        self.rounds = rounds
        self.checks = []


def walk_ms(result):
    m = re.search(r"walk_ms ([0-9.]+)", result["stderr"])
    return float(m.group(1)) if m else float("nan")


def parse_ms(result):
    m = re.search(r"parse_ms ([0-9.]+)", result["stderr"])
    return float(m.group(1)) if m else float("nan")


def wall_ms(result):
    return result["wall"] * 1e3


def rm_store(path):
    def before():
        shutil.rmtree(path, ignore_errors=True)
        os.sync()
    return before


def make_rows(inp, ref, tasks, threads):
    R = lambda tool: os.path.join(ref, tool)  # noqa: E731
    w = inp.work
    rows = []

    if 1 in tasks:
        rows.append(Row("1a", 1, "dump → image", "cs9-developer dump as shipped (ostree `.file` payloads)", {
            "ours": Variant([OURS["mkcomposefs"], "--from-file", inp.dump, f"{w}/ours.cfs"]),
            "reference": Variant([R("mkcomposefs"), "--from-file", inp.dump, f"{w}/ref.cfs"]),
            "composefs-rs": Variant(cannot="rejects the `.file` payloads (\"invalid object pathname\"): see 1b"),
        }))
        rows.append(Row("1b", 1, "dump → image", "cs9-developer dump, payload-normalized", {
            "ours": Variant([OURS["mkcomposefs"], "--from-file", inp.norm, f"{w}/ours-norm.cfs"]),
            "reference": Variant([R("mkcomposefs"), "--from-file", inp.norm, f"{w}/ref-norm.cfs"]),
            "composefs-rs": Variant([RS, "mkfs", inp.norm, f"{w}/rs-norm.cfs"]),
        }))
        rows.append(Row("1c", 1, "dump parse into a tree (ours in-process; reference: its whole "
                        "`mkcomposefs --from-file`)", "cs9-developer dump as shipped", {
            "ours": Variant([OURS["parse"], "--repeat", "21", inp.dump], metric=parse_ms,
                            note="`parse` example, strict mode, median of 21 parses"),
            "reference": Variant([R("mkcomposefs"), "--from-file", inp.dump, f"{w}/ref-1c.cfs"],
                                 metric=wall_ms,
                                 note="the whole process: it has no parser to time alone"),
            "composefs-rs": Variant(cannot="rejects the `.file` payloads; its parse is inside 1b"),
        }, unit="ms"))
    if 2 in tasks:
        for key, image, what in (("2a", inp.image, "cs9-developer image"),
                                 ("2b", inp.norm_image, "cs9-developer image, payload-normalized")):
            tag = key
            rows.append(Row(key, 2, "image → dump", what, {
                "ours": Variant([OURS["composefs-info"], "dump", image], stdout=f"{w}/ours-{tag}.dump"),
                "reference": Variant([R("composefs-info"), "dump", image], stdout=f"{w}/ref-{tag}.dump"),
                "composefs-rs": Variant([RS, "dump", image], stdout=f"{w}/rs-{tag}.dump", note=(
                    "output wrong: every `.file` redirect dropped (PAYLOAD `-`)" if key == "2a" else
                    "output wrong: a DIGEST column equal to the object name on every external file")),
            }))
    if 3 in tasks:
        img = inp.norm_image
        what = "cs9-developer image, payload-normalized"
        rows.append(Row("3a", 3, "full read walk (process)", what, {
            "ours": Variant([OURS["walk"], img], note="`walk` example"),
            "reference": Variant([R("composefs-info"), "dump", img], note="`composefs-info dump > /dev/null`: its nearest"),
            "composefs-rs": Variant([RS, "walk", img]),
        }))
        rows.append(Row("3b", 3, "full read walk (in-process, one walk)", what, {
            "ours": Variant([OURS["walk"], "--repeat", "21", img], metric=walk_ms),
            "reference": Variant(cannot="no library walk to time"),
            "composefs-rs": Variant([RS, "walk", "--repeat", "21", img], metric=walk_ms),
        }, unit="ms"))
        rows.append(Row("3c", 3, "fsck", what, {
            "ours": Variant([OURS["composefs-info"], "fsck", img], note="`composefs-info fsck`"),
            "reference": Variant(cannot="has no fsck (`composefs-info dump` in 3a is its nearest)"),
            "composefs-rs": Variant([RS, "fsck", img], note="`fsck_metadata` + `collect_objects`"),
        }))
        rows.append(Row("3d", 3, "fsck --canonical", what, {
            "ours": Variant([OURS["composefs-info"], "fsck", "--canonical", img]),
            "reference": Variant(cannot="none"),
            "composefs-rs": Variant(cannot="none"),
        }))
    if 4 in tasks:
        size = os.path.getsize(inp.big)
        rows.append(Row("4a", 4, "fs-verity digest, 1 thread", f"{size >> 20} MiB random, page-cached", {
            "ours": Variant([OURS["verity-digest"], "--threads", "1", inp.big], note="`digest_file` (pread)"),
            "reference": Variant([R("composefs-info"), "measure-file", inp.big], note="`composefs-info measure-file`"),
            "composefs-rs": Variant([RS, "verity", inp.big], note="`FsVerityHasher`, 1 MiB reads"),
            "fsverity-utils": Variant(["fsverity", "digest", "--compact", "--hash-alg=sha256",
                                       "--block-size=4096", inp.big]),
        }))
        rows.append(Row("4b", 4, "fs-verity digest, 2 threads", f"{size >> 20} MiB random, page-cached", {
            "ours": Variant([OURS["verity-digest"], "--threads", "2", inp.big]),
            "reference": Variant(cannot="one thread per file (4a)"),
            "composefs-rs": Variant(cannot="one thread per file (4a)"),
            "fsverity-utils": Variant(cannot="one thread (4a)"),
        }))
    if 5 in tasks:
        st = inp.tree_stats
        what = (f"copy of {inp.tree_source}: {st['files']} files, {st['dirs']} dirs, "
                f"{st['symlinks']} symlinks, {st['bytes'] / 1e6:.0f} MB")
        store = lambda t: f"{w}/store-{t}"  # noqa: E731
        rows.append(Row("5", 5, f"directory → image + digest store, {threads} threads", what, {
            "ours": Variant([OURS["mkcomposefs"], f"--digest-store={store('ours')}", f"--threads={threads}",
                             inp.tree, f"{w}/ours-tree.cfs"], before=rm_store(store("ours")),
                            note="objects made durable with one `syncfs` per batch"),
            "reference": Variant([R("mkcomposefs"), f"--digest-store={store('ref')}", f"--threads={threads}",
                                  inp.tree, f"{w}/ref-tree.cfs"], before=rm_store(store("ref")),
                                 note="one `fsync` per object"),
            "composefs-rs": Variant([RS, "mkdir", "--digest-store", store("rs"), "--threads", str(threads),
                                     inp.tree, f"{w}/rs-tree.cfs"], before=rm_store(store("rs")),
                                    note="`read_filesystem_with_opts` + `FlatDigestStore`, V0; "
                                    "no `fsync`/`syncfs`: objects are not durable when it exits"),
        }, rounds="slow"))
    return rows


# ---------------------------------------------------------------- checks

def count_objects(store):
    return sum(len(fs) for _, _, fs in os.walk(store))


DUMP_FIELDS = ["PATH", "SIZE", "MODE", "NLINK", "UID", "GID", "RDEV", "MTIME", "PAYLOAD",
               "CONTENT", "DIGEST"]


def describe_dump_diff(out, ref_out):
    """How a dump differs from the reference's: line counts per differing field."""
    a, b = out.splitlines(), ref_out.splitlines()
    fields = {}
    lines = abs(len(a) - len(b))
    for x, y in zip(a, b):
        if x == y:
            continue
        lines += 1
        fx, fy = x.split(b" "), y.split(b" ")
        for i in range(max(len(fx), len(fy))):
            if fx[i:i + 1] != fy[i:i + 1]:
                name = DUMP_FIELDS[i] if i < len(DUMP_FIELDS) else "XATTRS"
                fields[name] = fields.get(name, 0) + 1
    what = ", ".join(f"{n} in {k}" for k, n in sorted(fields.items(), key=lambda kv: -kv[1]))
    return f"{lines} of {len(b)} lines differ from the reference's ({what})"


def check(rows, inp):
    """Runs every variant once (unmeasured, which also warms the caches) and records
    what its output shows."""
    w = inp.work
    expected_sha = open(CS9 + ".sha256").read().split()[0]
    for row in rows:
        for tool, v in row.variants.items():
            if v.cannot:
                continue
            if v.before:
                v.before()
            r = run(v.argv, v.stdout)
            if r["rc"] != 0:
                sys.exit(f"compare: {row.key} {tool} failed ({r['rc']}): {' '.join(v.argv)}\n{r['stderr']}")
            v.first = r
        c = row.checks
        if row.key == "1a":
            for t, f in (("ours", "ours.cfs"), ("reference", "ref.cfs")):
                if t in row.variants and not row.variants[t].cannot:
                    s = sha256_file(f"{w}/{f}")
                    c.append(f"{t}: sha256 {s[:12]}… {'= upstream' if s == expected_sha else '≠ upstream ' + expected_sha[:12]}")
        if row.key == "1b":
            shas = {t: sha256_file(f"{w}/{f}") for t, f in
                    (("ours", "ours-norm.cfs"), ("reference", "ref-norm.cfs"), ("composefs-rs", "rs-norm.cfs"))}
            same = len(set(shas.values())) == 1
            c.append(("all three images byte-identical" if same else f"images differ: {shas}")
                     + f" (sha256 {shas['reference'][:12]}…)")
        if row.key == "1c":
            r = subprocess.run([OURS["parse"], inp.dump], capture_output=True, text=True, check=True)
            c.append(f"ours: {r.stdout.strip()} in the parsed tree")
        if row.task == 2:
            ref_out = open(row.variants["reference"].stdout, "rb").read()
            for t in ("ours", "composefs-rs"):
                v = row.variants[t]
                if v.cannot:
                    continue
                out = open(v.stdout, "rb").read()
                if out == ref_out:
                    c.append(f"{t}: output identical to the reference's")
                else:
                    c.append(f"{t}: " + describe_dump_diff(out, ref_out))
        if row.key == "3a":
            outs = {}
            for t in ("ours", "composefs-rs"):
                r = subprocess.run(row.variants[t].argv, capture_output=True, text=True, check=True)
                outs[t] = r.stdout.strip()
            c.append("walk totals equal: " + outs["ours"] if outs["ours"] == outs["composefs-rs"]
                     else f"walk totals DIFFER: {outs}")
        if row.key == "3c":
            c.append("composefs-rs: " + subprocess.run(row.variants["composefs-rs"].argv,
                                                       capture_output=True, text=True).stdout.strip())
        if row.task == 4:
            digests = {}
            for t, v in row.variants.items():
                if v.cannot:
                    continue
                out = subprocess.run(v.argv, capture_output=True, text=True, check=True).stdout
                digests[t] = out.split()[0].split(":")[-1]
            c.append(("all digests equal: " + next(iter(digests.values()))[:16] + "…")
                     if len(set(digests.values())) == 1 else f"DIGESTS DIFFER: {digests}")
        if row.task == 5:
            shas, objs = {}, {}
            for t, tag in (("ours", "ours"), ("reference", "ref"), ("composefs-rs", "rs")):
                if row.variants[t].cannot:
                    continue
                shas[t] = sha256_file(f"{w}/{tag}-tree.cfs")
                objs[t] = count_objects(f"{w}/store-{tag}")
            for t in shas:
                same = "image = reference's" if shas[t] == shas["reference"] else "image ≠ reference's"
                c.append(f"{t}: {objs[t]} objects, {same}")
    return rows


# ---------------------------------------------------------------- measuring and reporting

def measure(rows, rounds, slow_rounds, idle, idle_limit, idle_threshold):
    load = []
    for row in rows:
        n = slow_rounds if row.rounds == "slow" else rounds
        live = [(t, v) for t, v in row.variants.items() if not v.cannot]
        for i in range(n):
            busy, waited = (wait_idle(idle_limit, idle_threshold) if idle
                            else (busy_fraction(), 0.0))
            load.append({"row": row.key, "round": i, "busy": busy, "waited_s": waited,
                         "loadavg": open("/proc/loadavg").read().split()[:3]})
            log(f"{row.key} round {i + 1}/{n} (busy {busy:.0%}, waited {waited:.0f} s)")
            for tool, v in live:
                if v.before:
                    v.before()
                r = run(v.argv, v.stdout)
                if r["rc"] != 0:
                    sys.exit(f"compare: {row.key} {tool} failed: {r['stderr']}")
                r["figure"] = v.metric(r) if v.metric else r["wall"]
                del r["stderr"]
                v.samples.append(r)
    return load


def med(samples, key):
    return statistics.median(s[key] for s in samples)


def fmt(value, unit):
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:.3f} s" if value < 10 else f"{value:.2f} s"


def table(rows, key, unit_of, title, tools):
    lines = [f"**{title}**", "",
             "| # | task | input | " + " | ".join(TOOL_TITLES[t] for t in tools) + " |",
             "|---|---|---|" + "---|" * len(tools)]
    for row in rows:
        base = row.variants.get(row.base)
        base_val = med(base.samples, key) if base and base.samples else None
        if key == "figure" and row.unit == "ms":
            unit = "ms"
        else:
            unit = unit_of
        cells = []
        for t in tools:
            v = row.variants.get(t)
            if v is None:
                cells.append("—")
            elif v.cannot:
                cells.append(v.cannot)
            else:
                val = med(v.samples, key)
                shown = val / 1024 if unit == "MiB" else val
                cell = fmt(shown, unit)
                if t != row.base and base_val:
                    cell += f" ({val / base_val:.2f}×)"
                elif t == row.base:
                    cell = f"**{cell}**"
                cells.append(cell)
        lines.append(f"| {row.key} | {row.title} | {row.input} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(rows, meta, args, load):
    tools = [t for t in TOOLS if any(t in r.variants for r in rows)]
    busy = [x["busy"] for x in load]
    cmd = "python3 bench/compare.py " + " ".join(sys.argv[1:])
    parts = [
        f"**Command:** `{cmd.strip()}`",
        "",
        f"**Machine:** {meta['cpu']}, {meta['cpus']} CPUs, {meta['memory']} RAM, Linux {meta['kernel']}, "
        f"{meta['rustc']}, reference composefs {meta['reference_version']}, {meta['fsverity']}. "
        f"Work directory on {meta['work_fs']}. Date: {meta['date']}.",
        "",
        f"**Load:** {args.rounds} rounds ({args.slow_rounds} for task 5), interleaved; "
        + (f"each round started after waiting for under {args.idle_threshold:.0%} CPU use "
           f"(at most {args.idle_limit} s); "
           if args.wait_idle else "no idle wait; ")
        + (f"busy fraction at round start: median {statistics.median(busy):.0%}, max {max(busy):.0%}; "
           if busy else "")
        + f"load average at start {' '.join(meta['loadavg_start'])}, at end {' '.join(meta['loadavg_end'])}.",
        "",
        "Every figure is the median over the rounds; the ratio in brackets is that median "
        "divided by ours (below 1 means faster or smaller than ours).",
        "",
        table(rows, "figure", "s", "Wall time", tools),
        "",
        table([r for r in rows if r.unit == "s"], "cpu", "s", "CPU time (user + sys)", tools),
        "",
        table([r for r in rows if r.unit == "s"], "rss_kib", "MiB", "Peak RSS", tools),
        "",
        "**Checks** (one unmeasured run of every variant before the rounds):",
        "",
    ]
    for row in rows:
        for c in row.checks:
            parts.append(f"- {row.key}: {c}")
    notes = [(row.key, t, v.note) for row in rows for t, v in row.variants.items() if v.note]
    if notes:
        parts += ["", "**Notes:**", ""]
        parts += [f"- {k} {t}: {n}" for k, t, n in notes]
    parts += ["", "**Commands:**", ""]
    for row in rows:
        for t, v in row.variants.items():
            if v.argv:
                shown = " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in v.argv)
                parts.append(f"- {row.key} {t}: `{shown}`" + (" `> FILE`" if v.stdout else ""))
    return "\n".join(parts) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--slow-rounds", type=int, default=5, help="rounds of task 5")
    p.add_argument("--wait-idle", action="store_true")
    p.add_argument("--idle-limit", type=int, default=120, help="longest wait per round, s")
    p.add_argument("--idle-threshold", type=float, default=0.10,
                   help="busy fraction under which the machine counts as idle")
    p.add_argument("--reference-bin")
    p.add_argument("--work", default="/var/tmp/cfs-bench")
    p.add_argument("--tree-source", default="/usr/share")
    p.add_argument("--verity-mib", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tasks", default="1,2,3,4,5")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    p.add_argument("--no-build", action="store_true", help="use the binaries already built")
    p.add_argument("--ours-tools", help="take our mkcomposefs and composefs-info from this "
                   "directory instead of target/release (e.g. a branch's build)")
    args = p.parse_args()
    if args.ours_tools:
        for tool in ("mkcomposefs", "composefs-info"):
            OURS[tool] = os.path.join(os.path.abspath(args.ours_tools), tool)
    tasks = {int(t) for t in args.tasks.split(",")}

    ensure_system_tools()
    build_rusage()
    ref = reference_bin(args.reference_bin)
    if not args.no_build:
        build()
    meta = machine()
    meta["reference_version"] = reference_version(ref)
    inp = Inputs(os.path.abspath(args.work), ref, os.path.abspath(args.tree_source),
                 args.verity_mib, tasks)
    meta["work_fs"] = subprocess.run(["stat", "-f", "-c", "%T", inp.work], capture_output=True,
                                     text=True).stdout.strip()
    rows = make_rows(inp, ref, tasks, args.threads)
    check(rows, inp)
    load = measure(rows, args.rounds, args.slow_rounds, args.wait_idle, args.idle_limit,
                   args.idle_threshold)
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    md = report(rows, meta, args, load)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write(md)
    raw = {
        "machine": meta,
        "args": vars(args),
        "load": load,
        "rows": [{
            "key": r.key, "task": r.task, "title": r.title, "input": r.input, "checks": r.checks,
            "variants": {t: {"argv": v.argv, "cannot": v.cannot, "note": v.note, "samples": v.samples}
                         for t, v in r.variants.items()},
        } for r in rows],
    }
    if 5 in tasks:
        raw["tree"] = inp.tree_stats
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump(raw, f, indent=1)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
