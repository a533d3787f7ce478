//! Differential tests against the reference C tools: which dumps `mkcomposefs --from-file`
//! accepts versus which we accept (every difference is a SPEC.md section 10 entry), and
//! `composefs-info --filter` output versus our printer. Our printers on the reference's
//! images, unfiltered, are compared in `parity_printer.rs`.

use std::path::Path;
use std::process::Command;

use composefs_conformance::{reference_tool, skip, upstream_assets};
use composefs_format::dumpfile::{self, Field, HardlinkStyle, ParseErrorKind as K};
use composefs_format::dumpfile::{ParseOptions, PrintOptions};

const ROOT: &str = "/ 4096 40755 2 0 0 0 0.0 - - -\n";
const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Whether `mkcomposefs --from-file` accepts `text`.
fn reference_accepts(mkcomposefs: &Path, dir: &Path, text: &str, strict: bool) -> bool {
    let input = dir.join("in.dump");
    std::fs::write(&input, text).expect("write dump");
    let mut cmd = Command::new(mkcomposefs);
    cmd.arg("--from-file").arg(&input).arg(dir.join("out.cfs"));
    if strict {
        cmd.env("CFS_PARSE_STRICT", "1");
    } else {
        cmd.env_remove("CFS_PARSE_STRICT");
    }
    cmd.output().expect("run mkcomposefs").status.success()
}

/// A case: the text after ROOT, whether the reference accepts it, and our verdict (the
/// field and kind of our error, or `None` when we accept too).
struct Case {
    rest: String,
    reference: bool,
    ours: Option<(Field, K)>,
}

fn case(rest: impl Into<String>, reference: bool, ours: Option<(Field, K)>) -> Case {
    Case {
        rest: rest.into(),
        reference,
        ours,
    }
}

fn file(fields: &str) -> String {
    format!("/f {fields}\n")
}

#[test]
fn acceptance_matches_the_reference_except_for_refused_garbage() {
    let Some(mkcomposefs) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let u32_max = K::NumberTooLarge {
        max: u64::from(u32::MAX),
    };
    let cases = vec![
        // Accepted by both.
        case(file("0 100644 1 0 0 0 0.0 - - - user.=x"), true, None),
        case(file("0 1100644 1 0 0 0 -5.999999999 - - -"), true, None),
        case(
            file(&format!("10 100644 1 0 0 0 0.0 ab/cd - {DIGEST}")),
            true,
            None,
        ),
        case(file("5 100644 1 0 0 0 0.0 - hello - "), true, None),
        case(
            file("5 100644 1 0 0 0 0.0 - hello -  "),
            false,
            Some((Field::Xattr, K::XattrMissingEquals { index: 1 })),
        ),
        case(
            "/l 0 @100644 1 0 0 0 0.0 /f - -\n".to_string() + &file("3 100644 2 0 0 0 0.0 - abc -"),
            true,
            None,
        ),
        case("relative 0 100644 1 0 0 0 0.0 - - -\n", true, None),
        case("/c 0 20644 1 0 0 0 0.0 payload\n", true, None),
        // Rejected by both.
        case(
            file("0 644 1 0 0 0 0.0 - - -"),
            false,
            Some((Field::Mode, K::InvalidFileType { mode: 0o644 })),
        ),
        case(
            file("0 100644 1 0 0 0 5 - - -"),
            false,
            Some((Field::Mtime, K::MissingDot)),
        ),
        case(
            file("0 100644 1 0 0 0 0.0 - - - novalue"),
            false,
            Some((Field::Xattr, K::XattrMissingEquals { index: 1 })),
        ),
        case(
            "/a/b 0 100644 1 0 0 0 0.0 - - -\n",
            false,
            Some((
                Field::Path,
                K::ParentMissing {
                    parent: b"/a".to_vec(),
                },
            )),
        ),
        case(
            "/l 0 @100644 1 0 0 0 0.0 /nope - -\n",
            false,
            Some((
                Field::Payload,
                K::HardlinkTargetMissing {
                    target: b"/nope".to_vec(),
                },
            )),
        ),
        case(
            "/a 0 @100644 1 0 0 0 0.0 /b - -\n/b 0 @100644 1 0 0 0 0.0 /a - -\n",
            false,
            Some((
                Field::Payload,
                K::HardlinkCycle {
                    target: b"/b".to_vec(),
                },
            )),
        ),
        case(
            file("9007199254740993 100644 1 0 0 0 0.0 - - -"),
            false,
            Some((
                Field::Size,
                K::TooManyChunks {
                    size: (1 << 53) + 1,
                    chunks: 1025,
                },
            )),
        ),
        // Accepted by the reference, refused by us (SPEC.md section 10).
        case(
            file(&format!("10 100644 1 0 0 0 0.0 - - {}", &DIGEST[1..])),
            true,
            Some((Field::Digest, K::DigestLength { len: 63 })),
        ),
        case(
            file(&format!("10 100644 1 0 0 0 0.0 - - x{}", &DIGEST[1..])),
            true,
            Some((Field::Digest, K::DigestNotHex { offset: 0 })),
        ),
        case(
            file("10 100644 1 0 0 0 0.0 - -"),
            true,
            Some((Field::Digest, K::DigestLength { len: 0 })),
        ),
        case(
            file("0 100644 1 0 0 0 0.1000000000 - - -"),
            true,
            Some((
                Field::Mtime,
                K::NanosecondsOutOfRange {
                    nsec: 1_000_000_000,
                },
            )),
        ),
        case(
            file("0 100644 1 0 0 0 9223372036854775808.0 - - -"),
            true,
            Some((Field::Mtime, K::SecondsOutOfRange)),
        ),
        case(
            "/d 0 40755 2 0 0 0 0.0 - - -\n/l 0 @100644 1 0 0 0 0.0 /d - -\n",
            true,
            Some((
                Field::Payload,
                K::HardlinkToDirectory {
                    target: b"/d".to_vec(),
                },
            )),
        ),
        case(
            file("10 100644 1 0 0 0 0.0 /ab/cd - -"),
            true,
            Some((Field::Payload, K::PayloadAbsolute)),
        ),
        case(
            file("10 100644 1 0 0 0 0.0 ../../etc/shadow - -"),
            true,
            Some((Field::Payload, K::PayloadComponent)),
        ),
        case(
            file("10 100644 1 0 0 0 0.0 ab/./cd - -"),
            true,
            Some((Field::Payload, K::PayloadComponent)),
        ),
        case(
            file("10 100644 1 0 0 0 0.0 ab//cd - -"),
            true,
            Some((Field::Payload, K::PayloadComponent)),
        ),
        case(
            file("10 100644 1 0 0 0 0.0 ab\\x00cd - -"),
            true,
            Some((Field::Payload, K::Nul)),
        ),
        case(
            file("0 100644 0 0 0 0 0.0 - - -"),
            true,
            Some((Field::Nlink, K::ZeroNlink)),
        ),
        case(
            file("0 100644 4294967296 0 0 0 0.0 - - -"),
            true,
            Some((Field::Nlink, u32_max.clone())),
        ),
        case(
            file("0 100644 1 4294967296 0 0 0.0 - - -"),
            true,
            Some((Field::Uid, u32_max.clone())),
        ),
        case(
            file("0 100644 1 0 4294967296 0 0.0 - - -"),
            true,
            Some((Field::Gid, u32_max.clone())),
        ),
        case(
            "/c 0 20644 1 0 0 4294967296 0.0 - - -\n",
            true,
            Some((Field::Rdev, u32_max.clone())),
        ),
        case(
            file("0 40000100644 1 0 0 0 0.0 - - -"),
            true,
            Some((Field::Mode, u32_max)),
        ),
        case(
            file("+0 100644 1 0 0 0 0.0 - - -"),
            true,
            Some((Field::Size, K::NotANumber { radix: 10 })),
        ),
        case(
            "/d -1 40755 2 0 0 0 0.0 - - -\n",
            true,
            Some((Field::Size, K::NotANumber { radix: 10 })),
        ),
        case(
            "/d 0 40755 2 0 0 0 0.0 - - -\n/d//f 0 100644 1 0 0 0 0.0 - - -\n",
            true,
            Some((Field::Path, K::EmptyComponent)),
        ),
        case(
            "/a\\x00b 0 100644 1 0 0 0 0.0 - - -\n",
            true,
            Some((Field::Path, K::Nul)),
        ),
        case(
            file("0 100644 1 0 0 0 0.0 - - - user.a\\x00b=1"),
            true,
            Some((Field::Xattr, K::XattrKeyNul { index: 1 })),
        ),
    ];
    for Case {
        rest,
        reference,
        ours,
    } in cases
    {
        let text = format!("{ROOT}{rest}");
        assert_eq!(
            reference_accepts(&mkcomposefs, dir.path(), &text, true),
            reference,
            "reference verdict changed for {text:?}"
        );
        let got = dumpfile::parse_bytes(text.as_bytes(), ParseOptions::strict())
            .map(|_| ())
            .map_err(|e| (e.field, e.kind));
        assert_eq!(got.err(), ours, "{text:?}");
    }

    // Lenient mode: a symlink whose content matches SIZE but exceeds 5000 bytes.
    let text = format!(
        "{ROOT}/l 5001 120777 1 0 0 0 0.0 t {} -\n",
        "c".repeat(5001)
    );
    assert!(reference_accepts(&mkcomposefs, dir.path(), &text, false));
    let got = dumpfile::parse_bytes(text.as_bytes(), ParseOptions::lenient()).map(|_| ());
    assert_eq!(
        got.map_err(|e| (e.field, e.kind)),
        Err((Field::Content, K::ContentTooLong { len: 5001 }))
    );
}

#[test]
fn every_upstream_asset_gets_the_same_verdict_as_the_reference() {
    let Some(mkcomposefs) = reference_tool("mkcomposefs") else {
        return skip("reference mkcomposefs not installed");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for asset in upstream_assets() {
        let text = String::from_utf8_lossy(&asset.dump()).into_owned();
        if text.len() != asset.dump().len() {
            continue; // not UTF-8; covered by the asset tests
        }
        let strict = asset.strict && !asset.should_fail;
        let reference = reference_accepts(&mkcomposefs, dir.path(), &text, strict);
        let ours = dumpfile::parse_bytes(text.as_bytes(), ParseOptions { strict }).is_ok();
        assert_eq!(
            (reference, ours),
            (!asset.should_fail, !asset.should_fail),
            "{}",
            asset.name
        );
    }
}

#[test]
fn filtered_output_matches_composefs_info() {
    let (Some(mkcomposefs), Some(info)) = (
        reference_tool("mkcomposefs"),
        reference_tool("composefs-info"),
    ) else {
        return skip("reference mkcomposefs or composefs-info not installed");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let asset = upstream_assets()
        .into_iter()
        .find(|a| a.name == "special.dump")
        .expect("asset");
    let text = asset.dump();
    let image = dir.path().join("special.cfs");
    std::fs::write(dir.path().join("special.dump"), &text).expect("write");
    let status = Command::new(&mkcomposefs)
        .arg("--from-file")
        .arg(dir.path().join("special.dump"))
        .arg(&image)
        .status()
        .expect("mkcomposefs");
    assert!(status.success());
    let filters = ["chardev", "inline", "whiteout"];
    let run = |command: &str| {
        let mut cmd = Command::new(&info);
        for f in filters {
            cmd.arg(format!("--filter={f}"));
        }
        let out = cmd
            .arg(command)
            .arg(&image)
            .output()
            .expect("composefs-info");
        assert!(out.status.success());
        out.stdout
    };
    let tree = dumpfile::parse_bytes(&text, ParseOptions::strict())
        .expect("parse")
        .tree;
    let options = PrintOptions {
        hardlinks: HardlinkStyle::FirstInWalk,
        filter: filters.iter().map(|f| f.as_bytes().to_vec()).collect(),
    };
    let mut ours = Vec::new();
    dumpfile::print_ls(&tree, &options, &mut ours).expect("ls");
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&run("ls"))
    );
    let mut ours = Vec::new();
    dumpfile::print_dump(&tree, &options, &mut ours).expect("dump");
    // The root line differs: the image adds the v1 whiteout xattrs to the root.
    let skip_root = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .skip(1)
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let theirs = run("dump");
    assert_eq!(skip_root(&ours), skip_root(&theirs));
    assert_eq!(skip_root(&ours).len(), 3);
}
