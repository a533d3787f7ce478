//! Hand-made edge cases of the layout rules, each written by us and by the reference
//! mkcomposefs and compared byte for byte, then checked with `fsck.erofs`.

mod writer_support;

use composefs_conformance::{reference_tool, skip};
use writer_support::{
    assert_sound, dump, first_difference, fsck, our_image, reference_image, Line,
};

const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn root() -> Line {
    Line::dir(b"/")
}

/// The edge cases, by name.
fn cases() -> Vec<(&'static str, Vec<Line>)> {
    let mut cases: Vec<(&'static str, Vec<Line>)> = Vec::new();

    let mut v = vec![root()];
    for name in [
        &b"!a"[..],
        b"-x",
        b"+",
        b"\x01",
        b"\x7f",
        b"-.slice.d",
        b".hidden",
        b"a",
    ] {
        v.push(Line::file(&[b"/", name].concat(), 0));
    }
    v.push(Line::dir(b"/-d"));
    v.push(Line::file(b"/-d/\x02", 0));
    cases.push(("names below dot", v));

    let mut v = vec![root(), Line::dir(b"/d")];
    for c in b'a'..=b'z' {
        v.push(Line::file(&[&b"/d/"[..], &[c; 255]].concat(), 0));
        v.push(Line::file(&[&b"/"[..], &[c; 255]].concat(), 0));
    }
    cases.push(("255-byte names", v));

    let mut v = vec![root(), Line::dir(b"/big")];
    for k in 0..3000 {
        v.push(Line::file(
            format!("/big/entry-{k:05}-with-a-longer-name").as_bytes(),
            0,
        ));
    }
    cases.push(("directory of many blocks", v));

    // "." and ".." take 27 bytes; ten 190-byte names take 2020: the tail is 2047 bytes.
    // One name one byte longer makes 2048 (still inline), two bytes 2049 (a block).
    for (label, extra) in [
        ("dir tail 2047", 0usize),
        ("dir tail 2048", 1),
        ("dir tail 2049", 2),
    ] {
        let mut v = vec![root(), Line::dir(b"/t")];
        for k in 0..10u8 {
            let len = if k == 0 { 178 + extra } else { 178 };
            v.push(Line::file(
                &[&b"/t/"[..], &[b'a' + k], &vec![b'n'; len - 1]].concat(),
                0,
            ));
        }
        cases.push((label, v));
    }

    let mut v = vec![root()];
    for len in [1usize, 2047, 2048, 2049, 4095, 4096, 4097, 5000] {
        let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        v.push(Line::inline(format!("/inline-{len}").as_bytes(), content));
    }
    cases.push(("inline sizes", v));

    for lens in [
        &[4070usize, 4095][..],
        &[4071, 4072, 4073, 4074, 4075, 4080, 4090],
        &[4094, 100, 4093],
    ] {
        let mut v = vec![root()];
        for (k, &len) in lens.iter().enumerate() {
            v.push(Line::symlink(
                format!("/link-{k}").as_bytes(),
                &vec![b'l'; len],
            ));
            v.push(
                Line::file(format!("/link-{k}-f").as_bytes(), 0)
                    .x(b"user.pad", &vec![b'p'; 37 * k]),
            );
        }
        cases.push(("long symlinks", v));
    }

    let mut shared = vec![root()];
    for f in 0..3 {
        let mut line = Line::file(format!("/f{f}").as_bytes(), 0);
        for k in 0..(126 + 2 * f) {
            line = line.x(format!("user.x{k:03}").as_bytes(), b"v");
        }
        shared.push(line);
    }
    cases.push(("128+ shared xattrs", shared));

    cases.push((
        "ids and links above 16 bits",
        vec![
            Line {
                uid: 70000,
                ..root()
            },
            Line {
                gid: 65536,
                ..Line::file(b"/g", 0)
            },
            Line {
                nlink: 65536,
                ..Line::file(b"/n", 0)
            },
            Line {
                uid: 65535,
                gid: 65535,
                nlink: 65535,
                ..Line::file(b"/max", 0)
            },
        ],
    ));

    cases.push((
        "negative and differing mtimes",
        vec![
            Line {
                mtime: "5.5".into(),
                ..root()
            },
            Line {
                mtime: "-1.999999999".into(),
                ..Line::file(b"/neg", 0)
            },
            Line {
                mtime: "-1.999999999".into(),
                ..Line::file(b"/neg2", 0)
            },
            Line {
                mtime: "-1.0".into(),
                ..Line::file(b"/neg3", 0)
            },
            Line {
                mtime: "1700000000.123".into(),
                ..Line::dir(b"/d")
            },
        ],
    ));

    cases.push((
        "whiteouts named like stubs",
        vec![
            root().x(b"security.selinux", b"system_u:object_r:root_t:s0"),
            Line::new(b"/00", "20644"),
            Line {
                size: 77,
                ..Line::new(b"/ff", "20000")
            },
            Line {
                rdev: 259,
                ..Line::new(b"/0a", "20644")
            },
            Line::dir(b"/sub"),
            Line::new(b"/sub/w", "20600"),
        ],
    ));

    cases.push((
        "hard links before their primary",
        vec![
            root(),
            Line::link(b"/a", b"/z/f"),
            Line::link(b"/b", b"/z/s"),
            Line::dir(b"/z"),
            Line {
                nlink: 3,
                digest: Some(DIGEST.into()),
                payload: Some(b"01/23".to_vec()),
                ..Line::file(b"/z/f", 99)
            },
            Line::symlink(b"/z/s", b"target"),
            Line::link(b"/z/g", b"/z/f"),
            Line::link(b"/0w", b"/z/w"),
            Line::new(b"/z/w", "20644"),
        ],
    ));

    cases.push((
        "metacopy variants",
        vec![
            root(),
            Line {
                payload: Some(b"aa/bb".to_vec()),
                ..Line::file(b"/payload-only", 10)
            },
            Line {
                digest: Some(DIGEST.into()),
                ..Line::file(b"/digest-only", 10)
            },
            Line {
                digest: Some(DIGEST.into()),
                payload: Some(b"aa/bb".to_vec()),
                ..Line::file(b"/both", 10)
            },
            Line {
                payload: Some(b"aa/bb".to_vec()),
                ..Line::file(b"/empty-with-payload", 0)
            },
            Line {
                digest: Some(DIGEST.into()),
                ..Line::inline(b"/inline-with-digest", b"x".to_vec())
            },
            Line::file(b"/just-over-8t", (1 << 43) + 1),
        ],
    ));

    // 1024 chunks fill a block: they fit only because the xattrs end on a slot boundary.
    cases.push(("1024 chunks", vec![root(), Line::file(b"/huge", 1 << 53)]));

    cases.push((
        "devices and sizes",
        vec![
            root(),
            Line {
                size: 12,
                rdev: 0x0103,
                ..Line::new(b"/chr", "20644")
            },
            Line {
                size: 1 << 33,
                rdev: 0xfff_fffff,
                ..Line::new(b"/blk-huge-size", "60644")
            },
            Line {
                size: 5,
                ..Line::new(b"/fifo", "10644")
            },
            Line {
                size: 1 << 32,
                ..Line::new(b"/sock", "140755")
            },
            Line {
                mode: "1100644".into(),
                ..Line::file(b"/high-mode-bits", 0)
            },
        ],
    ));

    cases.push((
        "xattr names and escaping",
        vec![
            root()
                .x(b"trusted.overlay.opaque", b"user")
                .x(b"user.overlay.whiteouts", b"zzzzzzzzzzzzzz")
                .x(b"user.x", b"1"),
            Line::new(b"/w", "20644").x(b"trusted.overlay.whiteout", b"abcdefgh"),
            Line::file(b"/acl", 0)
                .x(b"system.posix_acl_access", b"\x02\x00\x00\x00")
                .x(b"system.posix_acl_default", b""),
            Line::file(b"/other", 0)
                .x(b"lustre.lov", b"l")
                .x(b"system.nfs4_acl", b"n")
                .x(b"system.posix_acl_accessX", b"q")
                .x(b"trusted.overlay.overlay.x", b"deep")
                .x(b"trusted.overlay.", b"empty-suffix")
                .x(b"user.", b"")
                .x(b"security.ima", &[0u8, 255, 1]),
        ],
    ));
    cases
}

#[test]
fn edge_cases_match_the_reference_and_pass_fsck() {
    let Some(tool) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    let mut fsck_missing = false;
    for (name, lines) in cases() {
        let dump = dump(&lines);
        for (args, min, max) in [
            (&[][..], 0, 1),
            (&["--min-version=0", "--max-version=0"][..], 0, 0),
            (&["--min-version=1"][..], 1, 0),
        ] {
            let theirs = reference_image(&tool, &dump, args, false)
                .unwrap_or_else(|e| panic!("{name} {args:?}: reference failed: {e}"));
            let ours =
                our_image(&dump, min, max).unwrap_or_else(|e| panic!("{name} {args:?}: {e}"));
            assert!(
                ours == theirs,
                "{name} {args:?}: {}",
                first_difference(&dump, min, max, &ours, &theirs)
            );
            assert_sound(&ours, name);
            match fsck(&ours) {
                Some(result) => result.unwrap_or_else(|e| panic!("{name}: fsck.erofs: {e}")),
                None => fsck_missing = true,
            }
        }
    }
    if fsck_missing {
        skip("fsck.erofs not installed: images not checked with it");
    }
}
