//! `composefs-info fsck` from the command line: output format and exit status; every image
//! we write and every sound reference image passes `fsck` and `fsck --canonical`; the
//! reference's unreadable chunk maps and every image of the hostile suite are rejected
//! with a message, never a crash or a hang (and `ls`, `dump`, `objects` on them never
//! crash either); `--canonical` locates the first difference of a sound image that is not
//! canonical; `--basedir` and `--verify-objects` check the backing files.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod info_support;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use composefs_conformance::hostile::{cases, Expect, Map};
use composefs_conformance::{gen_dump, read_data};
use composefs_std::store::object_path;
use composefs_std::verity::{digest_bytes, to_hex};
use info_support::{
    code, image_of_asset, image_of_dump, imageable_assets, info, run, run_with_deadline, stem,
    write_file, OUT_OF_LINE_CHUNK_MAP,
};

fn fsck(args: &[&str], images: &[impl AsRef<Path>]) -> Output {
    let mut cmd = info();
    cmd.arg("fsck")
        .args(args)
        .args(images.iter().map(AsRef::as_ref));
    run(cmd)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Asserts that `out` has exactly one `ok` line per image, starting with its path.
fn assert_all_ok(out: &Output, images: &[impl AsRef<Path>], ok: &str) {
    let text = stdout(out);
    assert_eq!(
        code(out),
        0,
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), images.len(), "{text}");
    for (line, image) in lines.iter().zip(images) {
        assert!(
            line.starts_with(&format!("{}: {ok}", image.as_ref().display())),
            "{line}"
        );
    }
}

#[test]
fn sound_image_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "ok.img",
        &read_data("images/hostile-base.img.gz"),
    );
    let out = fsck(&[], &[&path]);
    assert_all_ok(&out, &[path], "ok (");
}

#[test]
fn corrupted_image_exits_1_and_names_nid_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = read_data("images/hostile-base.img.gz");
    let nid = composefs_format::image::Image::open(&img)
        .unwrap()
        .lookup_path(b"/fifo")
        .unwrap()
        .nid();
    let off = (nid * 32) as usize;
    img[off + 6] = 0;
    let bad = write_file(dir.path(), "bad.img", &img);
    let ok = write_file(
        dir.path(),
        "ok.img",
        &read_data("images/hostile-base.img.gz"),
    );
    for canonical in [&[][..], &["--canonical"]] {
        let out = fsck(canonical, &[&ok, &bad]);
        assert_eq!(code(&out), 1);
        let text = stdout(&out);
        let want = format!(
            "{}: nid {nid} (/fifo): link count 0 [offset {off}]",
            bad.display()
        );
        assert!(text.lines().any(|l| l == want), "{canonical:?}: {text}");
        assert!(text
            .lines()
            .next()
            .unwrap()
            .starts_with(&format!("{}: ok", ok.display())));
    }
}

#[test]
fn unreadable_image_and_bad_usage_exit_2() {
    let out = fsck(&[], &["/nonexistent/image"]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Failed to open '/nonexistent/image': No such file or directory"));
    assert_eq!(code(&fsck(&[], &[] as &[&str])), 2);
    let mut cmd = info();
    cmd.arg("frobnicate");
    assert_eq!(code(&run(cmd)), 2);
    let dir = tempfile::tempdir().unwrap();
    let ok = write_file(
        dir.path(),
        "ok.img",
        &read_data("images/hostile-base.img.gz"),
    );
    // --verify-objects needs --basedir; --basedir must be a directory; no --filter.
    for args in [
        &["--verify-objects"][..],
        &["--basedir=/nonexistent/store"],
        &["--filter=a"],
    ] {
        let out = fsck(args, &[&ok]);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(out.stdout.is_empty());
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn every_image_we_write_passes_fsck_and_canonical() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = Vec::new();
    for asset in imageable_assets() {
        let name = format!("{}.img", stem(&asset));
        images.push(write_file(dir.path(), &name, &image_of_asset(&asset)));
    }
    for seed in 0..24u64 {
        let Some(dump) = gen_dump(
            500 + seed,
            [10, 100, 400][(seed % 3) as usize],
            seed % 2 == 0,
        ) else {
            return;
        };
        let version = [None, Some(0), Some(1)][(seed % 3) as usize];
        let name = format!("random-{seed}.img");
        images.push(write_file(
            dir.path(),
            &name,
            &image_of_dump(&dump, version, true),
        ));
    }
    assert_all_ok(&fsck(&[], &images), &images, "ok (");
    assert_all_ok(
        &fsck(&["--canonical"], &images),
        &images,
        "ok, canonical (format version ",
    );
}

#[test]
fn sound_reference_images_pass_and_out_of_line_chunk_maps_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut sound = Vec::new();
    let mut unreadable = Vec::new();
    for entry in std::fs::read_dir(composefs_conformance::data_dir().join("images")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".img.gz") else {
            continue;
        };
        let path = write_file(
            dir.path(),
            &format!("{stem}.img"),
            &read_data(&format!("images/{name}")),
        );
        if OUT_OF_LINE_CHUNK_MAP.contains(&format!("{stem}.dump").as_str()) {
            unreadable.push(path);
        } else {
            sound.push(path);
        }
    }
    sound.sort();
    assert_eq!((sound.len(), unreadable.len()), (9, 2));
    assert_all_ok(&fsck(&[], &sound), &sound, "ok (");
    assert_all_ok(&fsck(&["--canonical"], &sound), &sound, "ok, canonical (");
    for image in &unreadable {
        for args in [&[][..], &["--canonical"]] {
            let out = fsck(args, &[&image]);
            assert_eq!(code(&out), 1, "{}", image.display());
            let text = stdout(&out);
            let prefix = format!("{}: nid ", image.display());
            assert!(
                text.lines().any(|l| l.starts_with(&prefix)
                    && l.contains("inline data of")
                    && l.contains("crosses a block boundary")),
                "{text}"
            );
        }
    }
}

/// How long one command may take on a small hostile image before it counts as a hang.
const HOSTILE_DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn hostile_images_are_rejected_without_crash_or_hang() {
    let dir = tempfile::tempdir().unwrap();
    let map = Map::new();
    let mut rejected = 0;
    for (i, case) in cases().iter().enumerate() {
        let label = case.label();
        let path = write_file(dir.path(), &format!("case-{i}.img"), &case.image(&map));
        let shown = path.display().to_string();
        for args in [&[][..], &["--canonical"]] {
            let mut cmd = info();
            cmd.arg("fsck").args(args).arg(&path);
            let out = run_with_deadline(cmd, HOSTILE_DEADLINE);
            let text = stdout(&out);
            match case.expect {
                // Sound, but possibly not what the writer makes (e.g. a feature flag it
                // never sets).
                Expect::Accept if args.is_empty() => {
                    assert_eq!(code(&out), 0, "{label}: {text}");
                }
                Expect::Accept => {
                    assert!(
                        code(&out) == 0
                            || text.starts_with(&format!(
                                "{shown}: not canonical: first difference at byte "
                            )),
                        "{label} {args:?}: {text}"
                    );
                }
                Expect::Reject(..) | Expect::RejectAny => {
                    assert_eq!(code(&out), 1, "{label} {args:?}: {text}");
                    // Every line names the image and says what is wrong.
                    assert!(!text.is_empty(), "{label}");
                    for line in text.lines() {
                        let problem = line.strip_prefix(&format!("{shown}: ")).unwrap();
                        assert!(
                            problem.len() > 5 && !problem.starts_with("ok"),
                            "{label}: {line}"
                        );
                    }
                }
            }
        }
        if !matches!(case.expect, Expect::Accept) {
            rejected += 1;
        }
        // The listings read the image back into a tree: they print it or fail naming the
        // file, never crash or hang.
        for command in ["dump", "ls", "objects"] {
            let mut cmd = info();
            cmd.arg(command).arg(&path);
            let out = run_with_deadline(cmd, HOSTILE_DEADLINE);
            match code(&out) {
                0 => assert!(out.stderr.is_empty(), "{label} {command}"),
                1 => {
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(
                        err.starts_with(&format!("composefs-info: Failed to load '{shown}': ")),
                        "{label} {command}: {err}"
                    );
                    assert!(out.stdout.is_empty(), "{label} {command}");
                }
                other => panic!("{label} {command}: exit {other}"),
            }
            if matches!(case.expect, Expect::Accept) {
                assert_eq!(code(&out), 0, "{label} {command}");
            }
        }
    }
    assert!(rejected >= 60, "{rejected}");
}

/// The base image with the 32-bit field at `offset` of the inode of `path` replaced.
fn patched(path: &str, offset: usize, value: u32) -> (Vec<u8>, u64) {
    let map = Map::new();
    let nid = map.nid(path);
    let mut img = map.img.clone();
    let at = map.inode(path) + offset;
    img[at..at + 4].copy_from_slice(&value.to_le_bytes());
    (img, nid)
}

#[test]
fn canonical_reports_the_first_difference_of_a_sound_image() {
    let dir = tempfile::tempdir().unwrap();
    // i_ino (byte 20 of both inode forms): the kernel does not care, the writer numbers
    // inodes in order.
    let (img, nid) = patched("/fifo", 20, 4242);
    let path = write_file(dir.path(), "ino.img", &img);
    assert_all_ok(&fsck(&[], &[&path]), &[&path], "ok (");
    let out = fsck(&["--canonical"], &[&path]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    let offset = nid * 32 + 20;
    let want = format!(
        "{}: not canonical: first difference at byte {offset} in the inode structure of \
         inode nid {nid} (ino ",
        path.display()
    );
    assert!(text.starts_with(&want), "{text}");
    assert!(text.contains(") of /fifo (bytes "), "{text}");

    // The CHUNKED_FILE feature flag (superblock byte 80), honest since the image has
    // chunk-based files, but never set by the writer.
    let mut img = Map::new().img;
    img[1024 + 80] |= 0x4;
    let path = write_file(dir.path(), "feature.img", &img);
    assert_eq!(code(&fsck(&[], &[&path])), 0);
    let text = stdout(&fsck(&["--canonical"], &[&path]));
    assert!(
        text.starts_with(&format!(
            "{}: not canonical: first difference at byte 1104 in the superblock",
            path.display()
        )),
        "{text}"
    );
}

/// A store and an image whose backing files are, in turn: present, missing, present with
/// other content, a directory, a symlink out of the store, present without a digest in the
/// image, a symlink to the first inside the store; plus a hard link to the first.
struct Store {
    _dir: tempfile::TempDir,
    store: PathBuf,
    image: PathBuf,
    paths: Vec<String>,
}

fn store_case() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::write(dir.path().join("outside"), b"outside").unwrap();
    let one = NonZeroUsize::MIN;
    let contents: Vec<Vec<u8>> = (0..7u8).map(|i| vec![b'a' + i; 100]).collect();
    let digests: Vec<[u8; 32]> = contents.iter().map(|c| digest_bytes(c, one)).collect();
    let paths: Vec<String> = digests.iter().map(object_path).collect();
    let mut dump = String::from("/ 4096 40755 2 0 0 0 0.0 - - -\n");
    for (i, name) in ["a", "b", "c", "d", "e", "f", "h"].iter().enumerate() {
        let digest = if i == 5 {
            "-".to_string()
        } else {
            to_hex(&digests[i])
        };
        let nlink = if i == 0 { 2 } else { 1 };
        dump.push_str(&format!(
            "/{name} 100 100644 {nlink} 0 0 0 0.0 {} - {digest}\n",
            paths[i]
        ));
    }
    dump.push_str("/g 0 @100644 2 0 0 0 0.0 /a - -\n");
    let image = write_file(
        dir.path(),
        "i.img",
        &image_of_dump(dump.as_bytes(), None, true),
    );
    let object = |i: usize| {
        let p = store.join(&paths[i]);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    };
    std::fs::write(object(0), &contents[0]).unwrap();
    std::fs::write(object(2), b"changed").unwrap();
    std::fs::create_dir(object(3)).unwrap();
    std::os::unix::fs::symlink("../../outside", object(4)).unwrap();
    std::fs::write(object(5), &contents[5]).unwrap();
    std::os::unix::fs::symlink(format!("../{}", paths[0]), object(6)).unwrap();
    Store {
        _dir: dir,
        store,
        image,
        paths,
    }
}

#[test]
fn basedir_checks_that_backing_files_exist_beneath_it() {
    let s = store_case();
    let basedir = format!("--basedir={}", s.store.display());
    let image = s.image.display().to_string();
    let out = fsck(&[&basedir], &[&s.image]);
    assert_eq!(code(&out), 1);
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert!(lines[0].starts_with(&format!("{image}: ok (")));
    let p = &s.paths;
    assert_eq!(
        lines[1..].iter().collect::<std::collections::BTreeSet<_>>(),
        [
            format!("{image}: /b: object {}: missing", p[1]),
            format!("{image}: /d: object {}: not a regular file", p[3]),
            format!(
                "{image}: /e: object {}: is or passes through a symlink, which overlayfs \
                 does not follow",
                p[4]
            ),
            format!(
                "{image}: /h: object {}: is or passes through a symlink, which overlayfs \
                 does not follow",
                p[6]
            ),
        ]
        .iter()
        .collect(),
    );

    let out = fsck(&[&basedir, "--verify-objects", "--canonical"], &[&s.image]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    let changed = digest_bytes(b"changed", NonZeroUsize::MIN);
    let want = format!(
        "{image}: /c: object {}: fs-verity digest {}, expected {}",
        p[2],
        to_hex(&changed),
        p[2].replace('/', "")
    );
    assert!(text.lines().any(|l| l == want), "{text}");
    assert_eq!(text.lines().count(), 6, "{text}");

    // Without the bad ones: every object present and verified (the hard link counts once).
    for i in [1, 2, 3, 4, 6] {
        let path = s.store.join(&p[i]);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(&path);
        std::fs::write(&path, vec![b'a' + i as u8; 100]).unwrap();
    }
    let out = fsck(&[&basedir, "--verify-objects"], &[&s.image]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).ends_with(&format!("{image}: 7 objects present and verified\n")));
}

#[test]
fn missing_objects_needs_a_basedir_and_lists_exactly_the_missing_ones() {
    let s = store_case();
    let mut cmd = info();
    cmd.arg("missing-objects").arg(&s.image);
    let out = run(cmd);
    assert_eq!(code(&out), 2);
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--basedir"));

    let mut cmd = info();
    cmd.arg("missing-objects")
        .arg(format!("--basedir={}", s.store.display()))
        .arg(&s.image);
    let out = run(cmd);
    assert_eq!(code(&out), 0);
    // Missing: b, and e (which resolves outside the store). Present: a, h (a symlink
    // inside the store, followed as the reference follows it), c (whatever its
    // content), d (a directory exists, as for the reference), f.
    let mut want = [s.paths[1].clone(), s.paths[4].clone()];
    want.sort();
    assert_eq!(
        stdout(&out),
        want.iter().map(|p| format!("{p}\n")).collect::<String>()
    );
}

fn help_of(args: &[&str]) -> String {
    let mut cmd = info();
    cmd.args(args);
    let out = run(cmd);
    assert_eq!(code(&out), 0, "{args:?}");
    stdout(&out)
}

#[test]
fn help_describes_every_command() {
    let top = help_of(&["--help"]);
    for command in [
        "ls",
        "dump",
        "objects",
        "missing-objects",
        "measure-file",
        "fsck",
    ] {
        assert!(top.contains(command), "{command}");
        let text = help_of(&[command, "--help"]);
        assert!(
            text.contains(&format!("composefs-info {command}")),
            "{text}"
        );
        assert_eq!(help_of(&["help", command]), text);
    }
    assert!(help_of(&["fsck", "--help"]).contains("Exit status"));
    assert!(help_of(&["fsck", "--help"]).contains("--canonical"));
    assert!(help_of(&["missing-objects", "--help"]).contains("--basedir"));
}
