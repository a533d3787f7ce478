//! composefs-fuse shows a generated source tree exactly, and exactly as the kernel mount
//! (EROFS + overlayfs) of the same image shows it; reads at any offset return the source
//! bytes. Needs root and /dev/fuse; skips visibly elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod fuse_support;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use fuse_support::{
    assert_same, build_image, common_fields, dump, expected, fuse_available, generated_tree, join,
    kernel_mount_available, snapshot, Entry, FuseMount, KernelMount, Kind, Node, Rng,
};

struct Fixture {
    tmp: tempfile::TempDir,
    image: PathBuf,
    store: PathBuf,
    tree: Vec<Entry>,
}

fn fixture(seed: u64) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("image.cfs");
    let store = tmp.path().join("store");
    let tree = generated_tree(seed);
    build_image(&dump(&tree, &store), &image);
    Fixture {
        tmp,
        image,
        store,
        tree,
    }
}

fn options(f: &Fixture, extra: &str) -> String {
    format!(
        "source={},basedir={}{extra}",
        f.image.display(),
        f.store.display()
    )
}

fn ino(snap: &std::collections::BTreeMap<Vec<u8>, Node>, path: &str) -> u64 {
    snap[path.as_bytes()].ino
}

#[test]
fn fuse_mount_equals_the_source_tree_and_the_kernel_mount() {
    if !fuse_available("fuse tree comparison") {
        return;
    }
    let f = fixture(1);
    let mnt = FuseMount::start(&options(&f, ",verity"), &f.tmp.path().join("fuse"));
    let got = snapshot(&mnt.dir, 10_000);
    assert_same(
        "composefs-fuse vs source",
        &got,
        &expected(&f.tree),
        common_fields,
    );

    // Inode numbers: hard links share one, the root is FUSE's 1, the others are nids
    // (distinct), and a second walk sees the same numbers.
    assert_eq!(ino(&got, "/"), 1);
    assert_eq!(
        ino(&got, "/links/hl-inline"),
        ino(&got, "/files/inline-100")
    );
    assert_eq!(
        ino(&got, "/links/hl-inline-2"),
        ino(&got, "/files/inline-100")
    );
    assert_eq!(ino(&got, "/links/hl-ext"), ino(&got, "/files/ext-4097"));
    assert_eq!(ino(&got, "/links/hl-sym"), ino(&got, "/links/sym-rel"));
    assert_ne!(ino(&got, "/files/same-a"), ino(&got, "/files/same-b"));
    assert!(got.values().all(|n| n.ino == 1 || n.ino >= 36));
    let again = snapshot(&mnt.dir, 10_000);
    for (path, node) in &got {
        assert_eq!(
            again[path].ino,
            node.ino,
            "{}",
            String::from_utf8_lossy(path)
        );
    }

    if kernel_mount_available("fuse vs kernel comparison") {
        let kernel = KernelMount::new(&f.image, &[&f.store], &f.tmp.path().join("kernel"));
        let want = snapshot(&kernel.dir, 10_000);
        assert_same("composefs-fuse vs kernel mount", &got, &want, |g, w| {
            let mut d = common_fields(g, w);
            if g.size != w.size {
                d.push("size");
            }
            // FUSE requires inode number 1 for the root; the kernel shows its nid.
            if g.ino != w.ino && g.ino != 1 {
                d.push("ino");
            }
            d
        });
    }
    let log = mnt.log();
    assert!(mnt.unmount().success());
    assert!(
        log.is_empty(),
        "the server logged errors on a valid image: {log}"
    );
    // Plain readdir (no attributes with the entries) lists the same tree.
    let plain = FuseMount::start(&options(&f, ",noreaddirplus"), &f.tmp.path().join("plain"));
    let listed = snapshot(&plain.dir, 10_000);
    assert_same("readdir vs readdirplus", &listed, &got, |g, w| {
        let mut d = common_fields(g, w);
        if g.ino != w.ino {
            d.push("ino");
        }
        d
    });
    assert!(plain.unmount().success());
}

/// Reads at random offsets and lengths return the source bytes: through passthrough (the
/// default, where the kernel reads external files from the objects), and through the
/// server (`nopassthrough`) both via the page cache and with `O_DIRECT`, which sends the
/// server unaligned requests. (`O_DIRECT` through passthrough follows the object's
/// filesystem, as on a kernel mount: `fuse_passthrough.rs`.)
#[test]
fn reads_at_arbitrary_offsets_return_the_source_bytes() {
    if !fuse_available("fuse reads") {
        return;
    }
    let f = fixture(2);
    let mnt = FuseMount::start(&options(&f, ""), &f.tmp.path().join("fuse"));
    let server = FuseMount::start(
        &options(&f, ",nopassthrough"),
        &f.tmp.path().join("fuse-server"),
    );
    let mut rng = Rng::new(7);
    let mut checked = 0;
    for e in &f.tree {
        let data = match &e.kind {
            Kind::Inline(d) | Kind::External { data: d, .. }
                if !e.path.starts_with(b"/files/wide") =>
            {
                d
            }
            _ => continue,
        };
        for (m, direct) in [(&mnt, false), (&server, false), (&server, true)] {
            let file = open(&join(&m.dir, &e.path), direct);
            for _ in 0..40 {
                let len = data.len() as u64;
                let offset = rng.below(len + 100);
                let max = if rng.below(4) == 0 { 300_000 } else { 5000 };
                let want_len = rng.below(max) as usize;
                let mut buf = vec![0xAAu8; want_len];
                let n = read_full(&file, &mut buf, offset);
                let start = offset.min(len) as usize;
                let end = (start + want_len).min(data.len());
                assert_eq!(
                    &buf[..n],
                    &data[start..end],
                    "{} in {} direct={direct} offset {offset} len {want_len}",
                    String::from_utf8_lossy(&e.path),
                    m.dir.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 1500);
    assert!(mnt.unmount().success());
    assert!(server.unmount().success());
}

fn open(path: &Path, direct: bool) -> File {
    let mut flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC;
    if direct {
        flags |= rustix::fs::OFlags::DIRECT;
    }
    File::from(rustix::fs::open(path, flags, rustix::fs::Mode::empty()).unwrap())
}

fn read_full(file: &File, buf: &mut [u8], offset: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => panic!("read at {offset}: {e}"),
        }
    }
    done
}

/// SIGTERM and SIGINT unmount and end the server with status 0, leaving no dead mount.
#[test]
fn termination_signals_unmount_cleanly() {
    if !fuse_available("fuse signals") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("image.cfs");
    build_image(
        b"/ 0 40755 2 0 0 0 0.0 - - -\n/f 2 100644 1 0 0 0 0.0 - hi -\n",
        &image,
    );
    for signal in ["TERM", "INT", "HUP"] {
        let dir = tmp.path().join(signal);
        let mnt = FuseMount::start(&format!("source={}", image.display()), &dir);
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"hi");
        let status = mnt.signal(signal);
        assert!(status.success(), "{signal}: {status}");
        assert!(!std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(dir.to_str().unwrap()));
    }
}
