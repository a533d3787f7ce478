//! Table-driven tests of every parser rule (SPEC.md section 6), including each input the
//! reference accepts but we refuse (SPEC.md section 10).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::dumpfile::EscapeError;
use crate::ondisk::{S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG};
use crate::tree::Mtime;
use ParseErrorKind as K;

const ROOT: &str = "/ 4096 40755 2 0 0 0 0.0 - - -\n";
const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789ABCDEF0123456789ABCDEF";

fn parse(text: &str, strict: bool) -> Result<Parsed, ParseError> {
    parse_bytes(text.as_bytes(), ParseOptions { strict })
}

/// Parses `ROOT` followed by `rest`, in strict mode.
fn with_root(rest: &str) -> Result<Parsed, ParseError> {
    parse(&format!("{ROOT}{rest}"), true)
}

fn node<'a>(p: &'a Parsed, path: &str) -> &'a Node {
    p.tree
        .get(p.tree.lookup_path(path.as_bytes()).unwrap())
        .unwrap()
}

fn fail(line: u64, field: Field, kind: K) -> Result<(), ParseError> {
    Err(ParseError::new(line, field, kind))
}

/// Runs `(input after ROOT, expected)` cases in strict mode; the error line counts ROOT.
fn check(cases: &[(String, Result<(), ParseError>)]) {
    for (rest, want) in cases {
        let got = with_root(rest).map(|_| ());
        assert_eq!(&got, want, "input after root: {rest:?}");
    }
}

#[test]
fn whole_file_and_line_rules() {
    let cases: Vec<(&[u8], bool, Result<(), ParseError>)> = vec![
        (b"", true, fail(0, Field::File, K::NoEntries)),
        (b"\n", false, fail(1, Field::Line, K::EmptyLine)),
        (
            b"/ 4096 40755 2 0 0 0 0.0 - - -\n\n",
            false,
            fail(2, Field::Line, K::EmptyLine),
        ),
        (
            b"/ 4096 40755 2 0 0 0 0.0 - - -",
            true,
            fail(1, Field::Line, K::MissingNewline),
        ),
        (b"/ 4096 40755 2 0 0 0 0.0 - - -", false, Ok(())),
        (
            b"/ 4096 40755 2 0 0 0 0.0 - - -\n/a\x00b",
            false,
            fail(2, Field::Line, K::EmbeddedNul { offset: 2 }),
        ),
        (
            b"/ 4096 40755 2 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\x00\n",
            true,
            fail(2, Field::Line, K::EmbeddedNul { offset: 29 }),
        ),
        // CRLF leaves '\r' in the last field, as in the reference; the error names the
        // line ending and the field it broke.
        (
            b"/ 4096 40755 2 0 0 0 0.0 - - -\r\n",
            true,
            fail(
                1,
                Field::Line,
                K::CarriageReturn {
                    field: Field::Digest,
                },
            ),
        ),
        (b"/ 4096 40755 2 0 0 0 0.0 - - - user.a=b\r\n", true, Ok(())),
    ];
    for (text, strict, want) in cases {
        let got = parse_bytes(text, ParseOptions { strict }).map(|_| ());
        assert_eq!(got, want, "{:?}", String::from_utf8_lossy(text));
    }
    let crlf = parse_bytes(
        b"/ 4096 40755 2 0 0 0 0.0 - - - user.a=b\r\n",
        ParseOptions::strict(),
    );
    assert_eq!(
        crlf.unwrap().tree.root().xattr(b"user.a"),
        Some(&b"b\r"[..])
    );
}

#[test]
fn overlong_lines_are_refused_without_parsing_them() {
    let mut text = ROOT.as_bytes().to_vec();
    text.extend_from_slice(b"/a 0 100644 1 0 0 0 0.0 - - - user.a=");
    text.resize(ROOT.len() + crate::limits::MAX_DUMP_LINE_LEN + 1, b'x');
    text.push(b'\n');
    let len = crate::limits::MAX_DUMP_LINE_LEN + 1;
    assert_eq!(
        parse_bytes(&text, ParseOptions::strict()).map(|_| ()),
        fail(2, Field::Line, K::LineTooLong { len })
    );
}

#[test]
fn root_rules() {
    let file = "/a 0 100644 1 0 0 0 0.0 - - -\n";
    let cases: Vec<(String, Result<(), ParseError>)> = vec![
        (file.into(), fail(1, Field::Path, K::NoRoot)),
        (
            format!("{ROOT}{ROOT}"),
            fail(2, Field::Path, K::DuplicateRoot),
        ),
        (
            "/ 0 100644 1 0 0 0 0.0 - - -\n".into(),
            fail(1, Field::Mode, K::RootNotDirectory),
        ),
        (
            "/ 0 @40755 1 0 0 0 0.0 - - -\n".into(),
            fail(1, Field::Mode, K::HardlinkedDirectory),
        ),
        (
            "/ 0 @100644 1 0 0 0 0.0 /a - -\n".into(),
            fail(1, Field::Mode, K::RootNotDirectory),
        ),
        // "//" is not the root: it is an empty name.
        (
            "// 4096 40755 2 0 0 0 0.0 - - -\n".into(),
            fail(1, Field::Path, K::NoRoot),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(&text, true).map(|_| ()), want, "{text:?}");
    }
}

#[test]
fn path_rules() {
    let file = |p: &str| format!("{p} 0 100644 1 0 0 0 0.0 - - -\n");
    let dir = |p: &str| format!("{p} 0 40755 2 0 0 0 0.0 - - -\n");
    let long = "n".repeat(256);
    let cases: Vec<(String, Result<(), ParseError>)> = vec![
        (
            file("/a/b"),
            fail(
                2,
                Field::Path,
                K::ParentMissing {
                    parent: b"/a".to_vec(),
                },
            ),
        ),
        (
            dir("/a") + &file("/a/b/c"),
            fail(
                3,
                Field::Path,
                K::ParentMissing {
                    parent: b"/a/b".to_vec(),
                },
            ),
        ),
        (
            file("/f") + &file("/f/x"),
            fail(
                3,
                Field::Path,
                K::ParentNotDirectory {
                    parent: b"/f".to_vec(),
                },
            ),
        ),
        (
            file("/f") + &dir("/g") + &file("/f/x/y"),
            fail(
                4,
                Field::Path,
                K::ParentNotDirectory {
                    parent: b"/f".to_vec(),
                },
            ),
        ),
        (file("/."), fail(2, Field::Path, K::DotComponent)),
        (file("/.."), fail(2, Field::Path, K::DotComponent)),
        (
            dir("/a") + &file("/a/../b"),
            fail(3, Field::Path, K::DotComponent),
        ),
        (file("//"), fail(2, Field::Path, K::EmptyComponent)),
        (file("/a/"), fail(2, Field::Path, K::EmptyComponent)),
        // The reference accepts "/a//b" as "/a/b"; we refuse empty components.
        (
            dir("/a") + &file("/a//b"),
            fail(3, Field::Path, K::EmptyComponent),
        ),
        (
            file(&format!("/{long}")),
            fail(2, Field::Path, K::NameTooLong { len: 256 }),
        ),
        (file(&format!("/{}", &long[1..])), Ok(())),
        // The reference truncates at an escaped NUL; we refuse it.
        (file("/a\\x00b"), fail(2, Field::Path, K::Nul)),
        (file("/a") + &file("/a"), fail(3, Field::Path, K::Exists)),
        (file("/a") + &dir("a"), fail(3, Field::Path, K::Exists)),
        (file(""), fail(2, Field::Path, K::EmptyPath)),
        (
            file("/a\\q"),
            fail(2, Field::Path, K::Escape(EscapeError::Unknown(b'q'))),
        ),
        (
            file("/a\\"),
            fail(2, Field::Path, K::Escape(EscapeError::TrailingBackslash)),
        ),
        (file("relative") + &file("///leading"), Ok(())),
    ];
    check(&cases);

    // "\x2f" is a separator, since PATH is unescaped before it is split.
    let p = with_root(&(dir("/d") + &file("/d\\x2ff") + &file("/sp\\x20ace"))).unwrap();
    assert_eq!(node(&p, "/d/f").mode, S_IFREG | 0o644);
    assert!(p.tree.lookup_path(b"/sp ace").is_some());
    let p = with_root(&(file("relative") + &file("///leading"))).unwrap();
    assert!(p.tree.lookup_path(b"/relative").is_some());
    assert!(p.tree.lookup_path(b"/leading").is_some());
}

#[test]
fn mode_rules() {
    let line = |mode: &str| format!("/a 0 {mode} 1 0 0 0 0.0 - - -\n");
    let cases: Vec<(String, Result<(), ParseError>)> = vec![
        (
            line("644"),
            fail(2, Field::Mode, K::InvalidFileType { mode: 0o644 }),
        ),
        (
            line("0"),
            fail(2, Field::Mode, K::InvalidFileType { mode: 0 }),
        ),
        (
            line("170644"),
            fail(2, Field::Mode, K::InvalidFileType { mode: 0o170644 }),
        ),
        (line(""), fail(2, Field::Mode, K::EmptyNumber)),
        (line("@"), fail(2, Field::Mode, K::EmptyNumber)),
        (
            line("100648"),
            fail(2, Field::Mode, K::NotANumber { radix: 8 }),
        ),
        // The reference truncates the mode to 32 bits; we refuse.
        (
            line("40000000000"),
            fail(
                2,
                Field::Mode,
                K::NumberTooLarge {
                    max: u64::from(u32::MAX),
                },
            ),
        ),
    ];
    check(&cases);
    // Bits above the file type are kept exactly as given.
    let p = with_root(&line("1100644")).unwrap();
    assert_eq!(node(&p, "/a").mode, 0o1100644);
}

#[test]
fn numeric_field_rules() {
    let line = |size: &str, nlink: &str, uid: &str, gid: &str, rdev: &str, mtime: &str| {
        format!("/a {size} 100644 {nlink} {uid} {gid} {rdev} {mtime} - - -\n")
    };
    let ok = |f: &dyn Fn(&str) -> String, v: &str| (f(v), Ok(()));
    let u32_max = K::NumberTooLarge {
        max: u64::from(u32::MAX),
    };
    let cases: Vec<(String, Result<(), ParseError>)> = vec![
        (
            line("-1", "1", "0", "0", "0", "0.0"),
            fail(2, Field::Size, K::NotANumber { radix: 10 }),
        ),
        (
            line("+1", "1", "0", "0", "0", "0.0"),
            fail(2, Field::Size, K::NotANumber { radix: 10 }),
        ),
        (
            line("18446744073709551616", "1", "0", "0", "0", "0.0"),
            fail(2, Field::Size, K::NumberTooLarge { max: u64::MAX }),
        ),
        // The reference truncates these to 32 bits; we refuse.
        (
            line("0", "4294967296", "0", "0", "0", "0.0"),
            fail(2, Field::Nlink, u32_max.clone()),
        ),
        (
            line("0", "1", "4294967296", "0", "0", "0.0"),
            fail(2, Field::Uid, u32_max.clone()),
        ),
        (
            line("0", "1", "0", "4294967296", "0", "0.0"),
            fail(2, Field::Gid, u32_max.clone()),
        ),
        (
            line("0", "1", "0", "0", "4294967296", "0.0"),
            fail(2, Field::Rdev, u32_max),
        ),
        (
            line("0", "1", "0", "x", "0", "0.0"),
            fail(2, Field::Gid, K::NotANumber { radix: 10 }),
        ),
        // NLINK 0 on a non-directory: the reference accepts it, we refuse.
        (
            line("0", "0", "0", "0", "0", "0.0"),
            fail(2, Field::Nlink, K::ZeroNlink),
        ),
        (
            line("0", "1", "0", "0", "0", "5"),
            fail(2, Field::Mtime, K::MissingDot),
        ),
        // Nanoseconds of 10^9 or more: the reference accepts them, we refuse.
        (
            line("0", "1", "0", "0", "0", "1.1000000000"),
            fail(
                2,
                Field::Mtime,
                K::NanosecondsOutOfRange {
                    nsec: 1_000_000_000,
                },
            ),
        ),
        (
            line("0", "1", "0", "0", "7", "0.0"),
            fail(2, Field::Rdev, K::RdevOnNonDevice { rdev: 7 }),
        ),
        ok(&|v| line("0", "1", v, "0", "0", "0.0"), "4294967295"),
        ok(&|v| line("0", "1", "0", "0", "0", v), "-1.999999999"),
        ("/d 0 40755 0 0 0 0 0.0 - - -\n".into(), Ok(())),
    ];
    check(&cases);

    let p = with_root(&line("0", "3", "1000", "2000", "0", "-5.7")).unwrap();
    let a = node(&p, "/a");
    assert_eq!((a.nlink, a.uid, a.gid, a.rdev), (3, 1000, 2000, 0));
    assert_eq!(a.mtime, Mtime { sec: -5, nsec: 7 });
    // Lenient mode ignores RDEV on non-devices; devices keep it.
    let text = String::from("/ 4096 40755 2 0 0 10 0.0 - - -\n/c 0 20644 1 0 0 259 0.0 - - -\n");
    let p = parse(&text, false).unwrap();
    assert_eq!(p.tree.root().rdev, 0);
    assert_eq!(node(&p, "/c").rdev, 259);
    assert_eq!(node(&p, "/c").mode, S_IFCHR | 0o644);
    assert_eq!(
        parse(&text, true).map(|_| ()),
        fail(1, Field::Rdev, K::RdevOnNonDevice { rdev: 10 })
    );
}

#[test]
fn symlink_rules() {
    let link = |size: usize, target: &str, content: &str| {
        format!("/l {size} 120777 1 0 0 0 0.0 {target} {content} -\n")
    };
    let t4095 = "t".repeat(4095);
    let t4096 = "t".repeat(4096);
    let cases: Vec<(String, Result<(), ParseError>)> = vec![
        (
            link(0, "-", "-"),
            fail(2, Field::Payload, K::SymlinkWithoutTarget),
        ),
        (
            link(0, "", "-"),
            fail(2, Field::Payload, K::SymlinkWithoutTarget),
        ),
        (link(4095, &t4095, "-"), Ok(())),
        (
            link(4096, &t4096, "-"),
            fail(2, Field::Payload, K::PayloadTooLong { len: 4096 }),
        ),
        (
            link(5, "abc", "-"),
            fail(
                2,
                Field::Size,
                K::SymlinkSize {
                    size: 5,
                    target_len: 3,
                },
            ),
        ),
        (
            link(3, "abc", "xyz"),
            fail(2, Field::Content, K::SymlinkContent),
        ),
        (link(3, "a\\x00c", "-"), fail(2, Field::Payload, K::Nul)),
    ];
    check(&cases);
    // Lenient: the size becomes the target length and content is dropped.
    let p = parse(
        &format!(
            "{ROOT}{}{}",
            link(99, "abc", "-"),
            "/m 2 120777 1 0 0 0 0.0 x ab -\n"
        ),
        false,
    )
    .unwrap();
    let l = node(&p, "/l");
    assert_eq!(
        (l.mode, l.size, l.payload.as_deref()),
        (S_IFLNK | 0o777, 3, Some(&b"abc"[..]))
    );
    assert_eq!(node(&p, "/m").content, None);
    assert_eq!(node(&p, "/m").size, 1);
}

#[test]
fn regular_file_payload_content_and_digest_rules() {
    let file = |size: u64, payload: &str, content: &str, digest: &str| {
        format!("/f {size} 100644 1 0 0 0 0.0 {payload} {content} {digest}\n")
    };
    let c5000 = "c".repeat(5000);
    let c5001 = "c".repeat(5001);
    let p4096 = "p".repeat(4096);
    let two_53 = 1u64 << 53;
    let cases: Vec<(String, Result<(), ParseError>)> = vec![
        (file(10, "ab/cdef", "-", DIGEST), Ok(())),
        (file(10, "", "-", "-"), Ok(())),
        // Backing paths that overlayfs would resolve outside the object store: the
        // reference accepts them, we refuse.
        (
            file(10, "/ab/cd", "-", "-"),
            fail(2, Field::Payload, K::PayloadAbsolute),
        ),
        (
            file(10, "ab/../cd", "-", "-"),
            fail(2, Field::Payload, K::PayloadComponent),
        ),
        (
            file(10, "./cd", "-", "-"),
            fail(2, Field::Payload, K::PayloadComponent),
        ),
        (
            file(10, "..", "-", "-"),
            fail(2, Field::Payload, K::PayloadComponent),
        ),
        (
            file(10, "ab//cd", "-", "-"),
            fail(2, Field::Payload, K::PayloadComponent),
        ),
        (
            file(10, "ab/", "-", "-"),
            fail(2, Field::Payload, K::PayloadComponent),
        ),
        (
            file(10, &p4096, "-", "-"),
            fail(2, Field::Payload, K::PayloadTooLong { len: 4096 }),
        ),
        (
            file(10, "a\\x00b", "-", "-"),
            fail(2, Field::Payload, K::Nul),
        ),
        (file(5000, "-", &c5000, "-"), Ok(())),
        (
            file(5001, "-", &c5001, "-"),
            fail(2, Field::Content, K::ContentTooLong { len: 5001 }),
        ),
        (
            file(4, "-", "abc", "-"),
            fail(2, Field::Content, K::ContentSize { len: 3, size: 4 }),
        ),
        (file(1, "-", "\\x2d", "-"), Ok(())),
        (
            file(1, "-", "\\x", "-"),
            fail(2, Field::Content, K::Escape(EscapeError::TruncatedHex)),
        ),
        // Digests that are not 64 hex digits: the reference ignores the parse error and
        // uses whatever is in its buffer; we refuse.
        (
            file(10, "-", "-", &DIGEST[1..]),
            fail(2, Field::Digest, K::DigestLength { len: 63 }),
        ),
        (
            file(10, "-", "-", &format!("{DIGEST}0")),
            fail(2, Field::Digest, K::DigestLength { len: 65 }),
        ),
        (
            file(10, "-", "-", &format!("x{}", &DIGEST[1..])),
            fail(2, Field::Digest, K::DigestNotHex { offset: 0 }),
        ),
        (
            "/f 10 100644 1 0 0 0 0.0 - -\n".into(),
            fail(2, Field::Digest, K::DigestLength { len: 0 }),
        ),
        // More than 1024 chunks: the reference fails only when writing; we fail here.
        (file(two_53, "-", "-", "-"), Ok(())),
        (
            file(two_53 + 1, "-", "-", "-"),
            fail(
                2,
                Field::Size,
                K::TooManyChunks {
                    size: two_53 + 1,
                    chunks: 1025,
                },
            ),
        ),
        (
            file(9_500_000_000_000_000, "-", "-", "-"),
            fail(
                2,
                Field::Size,
                K::TooManyChunks {
                    size: 9_500_000_000_000_000,
                    chunks: 1081,
                },
            ),
        ),
        (format!("/d {} 40755 2 0 0 0 0.0 - - -\n", u64::MAX), Ok(())),
    ];
    check(&cases);

    let p =
        with_root(&(file(10, "ab/cdef", "-", DIGEST) + "/e 0 100644 1 0 0 0 0.0   -\n")).unwrap();
    let f = node(&p, "/f");
    assert_eq!(f.payload.as_deref(), Some(&b"ab/cdef"[..]));
    assert_eq!(f.digest.unwrap()[..4], [0x01, 0x23, 0x45, 0x67]);
    assert_eq!(f.digest.unwrap()[31], 0xef);
    // Empty PAYLOAD and CONTENT fields are kept as empty values.
    let e = node(&p, "/e");
    assert_eq!(
        (e.payload.as_deref(), e.content.as_deref()),
        (Some(&b""[..]), Some(&b""[..]))
    );
    let p = with_root(&file(3, "-", "a\\nb", "-")).unwrap();
    assert_eq!(node(&p, "/f").content.as_deref(), Some(&b"a\nb"[..]));
    // A line that ends before DIGEST is accepted where no digest is used (upstream
    // honggfuzz-longlink-unterminated.dump).
    let p = with_root("/c 0 20644 1 0 0 0 0.0 payload\n").unwrap();
    assert_eq!(node(&p, "/c").digest, None);
    assert_eq!(node(&p, "/c").payload.as_deref(), Some(&b"payload"[..]));
}

#[test]
fn xattrs_on_a_line() {
    let p =
        with_root("/a 0 100644 1 0 0 0 0.0 - - - user.b=1 security.x=\\x3d user.b=2\n").unwrap();
    let a = node(&p, "/a");
    assert_eq!(a.xattrs.len(), 2);
    assert_eq!(a.xattr(b"user.b"), Some(&b"2"[..]));
    assert_eq!(a.xattr(b"security.x"), Some(&b"="[..]));
    check(&[
        (
            "/a 0 100644 1 0 0 0 0.0 - - - =v\n".into(),
            fail(2, Field::Xattr, K::XattrKeyEmpty { index: 1 }),
        ),
        (
            "/a 0 100644 1 0 0 0 0.0 - - -  \n".into(),
            fail(2, Field::Xattr, K::XattrMissingEquals { index: 1 }),
        ),
        ("/a 0 100644 1 0 0 0 0.0 - - - \n".into(), Ok(())),
    ]);
}

#[test]
fn hardlink_rules() {
    let file = |p: &str| format!("{p} 0 100644 5 0 0 0 0.0 - - -\n");
    let link = |p: &str, target: &str| format!("{p} 0 @100644 0 0 0 0 0.0 {target} - -\n");
    let cases: Vec<(String, Result<(), ParseError>)> = vec![
        (
            link("/l", "/l"),
            fail(2, Field::Payload, K::HardlinkToItself),
        ),
        (
            link("/a", "/b") + &link("/b", "/a"),
            fail(
                2,
                Field::Payload,
                K::HardlinkCycle {
                    target: b"/b".to_vec(),
                },
            ),
        ),
        (
            link("/l", "/nope"),
            fail(
                2,
                Field::Payload,
                K::HardlinkTargetMissing {
                    target: b"/nope".to_vec(),
                },
            ),
        ),
        (
            link("/l", "-"),
            fail(2, Field::Payload, K::HardlinkWithoutTarget),
        ),
        (
            "/l 0 @40755 0 0 0 0 0.0 /x - -\n".into(),
            fail(2, Field::Mode, K::HardlinkedDirectory),
        ),
        (
            "/l 0 @644 0 0 0 0 0.0 /x - -\n".into(),
            fail(2, Field::Mode, K::InvalidFileType { mode: 0o644 }),
        ),
        // A non-directory "@" line naming a directory: the reference accepts it and
        // writes a directory hard link; we refuse.
        (
            "/d 0 40755 2 0 0 0 0.0 - - -\n".to_string() + &link("/l", "/d"),
            fail(
                3,
                Field::Payload,
                K::HardlinkToDirectory {
                    target: b"/d".to_vec(),
                },
            ),
        ),
        (
            link("/l", "/"),
            fail(
                2,
                Field::Payload,
                K::HardlinkToDirectory {
                    target: b"/".to_vec(),
                },
            ),
        ),
        (
            file("/f") + &link("/l", "/f") + &file("/l/x"),
            fail(
                4,
                Field::Path,
                K::ParentNotDirectory {
                    parent: b"/l".to_vec(),
                },
            ),
        ),
        (
            file("/f") + &link("/l", "/f") + &link("/m", "/l/x"),
            fail(
                4,
                Field::Payload,
                K::HardlinkTargetMissing {
                    target: b"/l/x".to_vec(),
                },
            ),
        ),
        (
            file("/f") + &link("/f", "/f"),
            fail(3, Field::Path, K::Exists),
        ),
        // Every field but MODE and PAYLOAD is ignored, as by the reference.
        (
            file("/f") + "/l junk @100644 x y z w v /f junk junk \\q\n",
            Ok(()),
        ),
    ];
    check(&cases);

    // Forward references, chains and lenient target paths resolve to the final node;
    // the target keeps its NLINK; every node records its line.
    let text = link("/a", "/c")
        + &link("/b", "//a")
        + &file("/c")
        + "/d 0 40755 2 0 0 0 0.0 - - -\n"
        + &link("/d/e", "/b");
    let p = with_root(&text).unwrap();
    let c = p.tree.lookup_path(b"/c").unwrap();
    for (name, hardlink) in [("a", true), ("b", true), ("c", false)] {
        let e = p.tree.root().child(name.as_bytes()).unwrap();
        assert_eq!((e.node, e.hardlink), (c, hardlink), "{name}");
    }
    let d = p.tree.lookup_path(b"/d").unwrap();
    let e = p.tree.get(d).unwrap().child(b"e").unwrap();
    assert_eq!((e.node, e.hardlink), (c, true));
    assert_eq!(p.tree.get(c).unwrap().nlink, 5);
    assert_eq!(p.tree.len(), 3);
    assert_eq!(p.line_of(NodeId::ROOT), Some(1));
    assert_eq!(p.line_of(c), Some(4));
    assert_eq!(p.line_of(d), Some(5));
    assert_eq!(p.tree.validate(), Ok(()));
}

#[test]
fn out_of_order_entries_sort_and_still_catch_duplicates() {
    // 300 names in a scrambled order, then the children of each in reverse order.
    let mut text = String::from(ROOT);
    let order: Vec<u32> = (0..300u32).map(|i| (i * 7919) % 300).collect();
    for i in &order {
        text += &format!("/d{i} 0 40755 2 0 0 0 0.0 - - -\n");
    }
    for i in order.iter().rev() {
        text +=
            &format!("/d{i}/z 0 100644 1 0 0 0 0.0 - - -\n/d{i}/a 0 100644 1 0 0 0 0.0 - - -\n");
    }
    let p = parse(&text, true).unwrap();
    assert_eq!(p.tree.validate(), Ok(()));
    assert_eq!(p.tree.root().children.len(), 300);
    assert!(p.tree.lookup_path(b"/d123/a").is_some());
    let dup = format!("{text}/d77 0 100644 1 0 0 0 0.0 - - -\n");
    let line = u64::try_from(dup.lines().count()).unwrap();
    assert_eq!(
        parse(&dup, true).map(|_| ()),
        fail(line, Field::Path, K::Exists)
    );
}

#[test]
fn parse_line_feeds_lines_and_repeats_the_first_error() {
    let mut parser = Parser::new(ParseOptions::strict());
    parser.parse_line(ROOT.as_bytes()).unwrap();
    parser
        .parse_line(b"/a 0 100644 1 0 0 0 0.0 - - -\n")
        .unwrap();
    let first = parser
        .parse_line(b"/a 0 100644 1 0 0 0 0.0 - - -\n")
        .unwrap_err();
    assert_eq!(first, ParseError::new(3, Field::Path, K::Exists));
    assert_eq!(
        parser.parse_line(b"/b 0 100644 1 0 0 0 0.0 - - -\n"),
        Err(first.clone())
    );
    assert_eq!(parser.finish().map(|_| ()), Err(first));

    let mut parser = Parser::new(ParseOptions::lenient());
    assert_eq!(
        parser.parse_line(b"/ 4096 40755 2 0 0 0 0.0 - - -\n/a\n"),
        Err(ParseError::new(
            1,
            Field::Line,
            K::EmbeddedNewline { offset: 30 }
        ))
    );
    let mut parser = Parser::new(ParseOptions::lenient());
    parser.reserve(2);
    parser
        .parse_line(b"/ 4096 40755 2 0 0 0 0.0 - - -\n")
        .unwrap();
    parser.parse_line(b"/a 0 100644 1 0 0 0 0.0 - - -").unwrap();
    assert_eq!(node(&parser.finish().unwrap(), "/a").mode, S_IFREG | 0o644);
    assert_eq!(
        Parser::new(ParseOptions::lenient()).parse_line(b"/\x00"),
        Err(ParseError::new(
            1,
            Field::Line,
            K::EmbeddedNul { offset: 1 }
        ))
    );
}

#[test]
#[cfg(feature = "std")]
fn parse_reader_matches_parse_bytes() {
    let text = format!(
        "{ROOT}/d 0 40755 2 0 0 0 0.0 - - -\n/d/l 0 @100644 1 0 0 0 0.0 /f - -\n\
         /f 3 100644 2 0 0 0 1.5 - abc - user.x=y\n/s 1 120777 1 0 0 0 0.0 t - -"
    );
    for strict in [false, true] {
        let options = ParseOptions { strict };
        let from_bytes = parse_bytes(text.as_bytes(), options);
        let from_reader = parse_reader(std::io::Cursor::new(text.as_bytes()), options);
        match (from_bytes, from_reader) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(ReadError::Parse(b))) => assert_eq!(a, b),
            (a, b) => panic!("{a:?} vs {b:?}"),
        }
    }
    assert!(parse_reader(
        std::io::Cursor::new(text.as_bytes()),
        ParseOptions::lenient()
    )
    .is_ok());
    let long = format!(
        "{ROOT}/a 0 100644 1 0 0 0 0.0 - - - user.a={}\n",
        "x".repeat(crate::limits::MAX_DUMP_LINE_LEN)
    );
    match parse_reader(
        std::io::Cursor::new(long.as_bytes()),
        ParseOptions::strict(),
    ) {
        Err(ReadError::Parse(e)) => {
            assert_eq!((e.line, e.field), (2, Field::Line));
            assert!(matches!(e.kind, K::LineTooLong { .. }));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn directories_keep_their_size_and_mode_bits() {
    let p = with_root("/d 12345 41777 7 1 2 0 3.4 - - - user.a=b\n").unwrap();
    let d = node(&p, "/d");
    assert_eq!((d.mode, d.size, d.nlink), (S_IFDIR | 0o1777, 12345, 7));
    assert_eq!(d.xattr(b"user.a"), Some(&b"b"[..]));
}

/// A CRLF file is refused on its first line with a message about the line ending, in both
/// modes (a line that parses with a trailing `\r` is kept: `whole_file_and_line_rules`).
#[test]
fn crlf_line_endings_are_named() {
    let crlf = "/ 4096 40755 2 0 0 0 0.0 - - -\r\n/a 0 100644 1 0 0 0 0.0 - - -\r\n";
    for strict in [true, false] {
        let err = parse(crlf, strict).map(|_| ()).unwrap_err();
        assert_eq!(
            err,
            ParseError::new(
                1,
                Field::Line,
                K::CarriageReturn {
                    field: Field::Digest
                }
            ),
            "strict {strict}"
        );
        assert!(err.to_string().contains("CRLF"), "{err}");
    }
}
