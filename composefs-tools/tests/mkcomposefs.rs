//! `mkcomposefs` command-line behaviour: sources and targets, version flags, digests, exit
//! statuses, error messages with line numbers, and never leaving a partial image behind.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use composefs_conformance::{data_dir, dir_names, reference_tool, sha256_hex};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkcomposefs"));
    cmd.env_remove("CFS_PARSE_STRICT");
    cmd
}

fn asset(name: &str) -> PathBuf {
    data_dir().join("upstream").join(name)
}

fn expected_sha256(name: &str) -> String {
    fs::read_to_string(asset(&format!("{name}.sha256")))
        .unwrap()
        .trim()
        .to_owned()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const WHITEOUT_DUMP: &str = "/ 0 40755 2 0 0 0 0.0 - - -\n/w 0 20000 1 0 0 0 0.0 - - -\n";

#[test]
fn writes_the_reference_image_of_a_dump_file() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("special.img");
    let out = run(bin()
        .args(["--min-version=0", "--max-version=0", "--from-file"])
        .arg(asset("special.dump"))
        .arg(&image));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(
        sha256_hex(&fs::read(&image).unwrap()),
        expected_sha256("special.dump")
    );
    assert_eq!(
        dir_names(dir.path()),
        ["special.img"],
        "no temporary file left"
    );
}

#[test]
fn reads_stdin_and_writes_stdout() {
    let mut child = bin()
        .args(["--from-file", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&fs::read(asset("special_v1.dump")).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The default versions pick 1 for this dump (it has a whiteout).
    assert_eq!(sha256_hex(&out.stdout), expected_sha256("special_v1.dump"));
}

/// The format version written for `dump` with `flags`.
fn version_with(dump: &str, flags: &[&str]) -> u32 {
    let dir = tempfile::tempdir().unwrap();
    let (src, image) = (dir.path().join("d.dump"), dir.path().join("i.img"));
    fs::write(&src, dump).unwrap();
    let out = run(bin().args(flags).arg("--from-file").arg(&src).arg(&image));
    assert!(out.status.success(), "{flags:?}: {}", stderr(&out));
    let bytes = fs::read(&image).unwrap();
    u32::from_le_bytes(bytes[12..16].try_into().unwrap())
}

#[test]
fn version_flags_default_like_the_reference() {
    let plain = "/ 0 40755 2 0 0 0 0.0 - - -\n";
    assert_eq!(version_with(plain, &[]), 0);
    assert_eq!(
        version_with(WHITEOUT_DUMP, &[]),
        1,
        "a whiteout raises the default to 1"
    );
    assert_eq!(version_with(WHITEOUT_DUMP, &["--max-version=0"]), 0);
    // Either flag makes the other default to 0.
    assert_eq!(version_with(plain, &["--min-version=1"]), 1);
    assert_eq!(version_with(WHITEOUT_DUMP, &["--min-version=0"]), 0);
    assert_eq!(version_with(WHITEOUT_DUMP, &["--max-version", "1"]), 1);
}

#[test]
fn print_digest_prints_the_fs_verity_digest_of_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("i.img");
    let out = run(bin()
        .args(["--print-digest", "--from-file"])
        .arg(asset("special_v1.dump"))
        .arg(&image));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.len(), 65);
    assert!(printed.ends_with('\n'));
    let mut hasher = composefs_format::verity::FsVerityHasher::new();
    hasher.update(&fs::read(&image).unwrap()).unwrap();
    let ours: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(printed.trim_end(), ours);
    if let Ok(fsverity) = Command::new("fsverity").arg("digest").arg(&image).output() {
        let text = String::from_utf8_lossy(&fsverity.stdout);
        assert!(
            text.starts_with(&format!("sha256:{ours} ")),
            "fsverity says {text}"
        );
    }

    // The reference prints the same.
    if let Some(reference) = reference_tool("mkcomposefs") {
        let theirs = run(Command::new(reference)
            .args(["--print-digest-only", "--from-file"])
            .arg(asset("special_v1.dump")));
        assert_eq!(String::from_utf8(theirs.stdout).unwrap(), printed);
    }

    // --print-digest-only prints the same and writes nothing.
    let only = run(bin()
        .args(["--print-digest-only", "--from-file"])
        .arg(asset("special_v1.dump")));
    assert!(only.status.success(), "{}", stderr(&only));
    assert_eq!(String::from_utf8(only.stdout).unwrap(), printed);
    assert_eq!(dir_names(dir.path()), ["i.img"]);
}

#[test]
fn strict_parsing_follows_cfs_parse_strict() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("i.img");
    // longlink.dump has symlink sizes that differ from their targets.
    let lenient = run(bin()
        .arg("--from-file")
        .arg(asset("longlink.dump"))
        .arg(&image));
    assert!(lenient.status.success(), "{}", stderr(&lenient));
    assert_eq!(
        sha256_hex(&fs::read(&image).unwrap()),
        expected_sha256("longlink.dump")
    );
    let strict = run(bin()
        .env("CFS_PARSE_STRICT", "")
        .arg("--from-file")
        .arg(asset("longlink.dump"))
        .arg(&image));
    assert_eq!(strict.status.code(), Some(1));
    assert!(
        stderr(&strict).contains("longlink.dump:"),
        "{}",
        stderr(&strict)
    );
}

#[test]
fn parse_errors_name_file_line_and_field_and_leave_no_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("i.img");
    fs::write(&image, b"previous image").unwrap();
    let src = dir.path().join("bad.dump");
    fs::write(
        &src,
        "/ 0 40755 2 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\n/b 0 644 1 0 0 0 0.0 - - -\n",
    )
    .unwrap();
    let out = run(bin().arg("--from-file").arg(&src).arg(&image));
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!("{}:3: MODE: ", src.display())),
        "{message}"
    );
    assert_eq!(
        fs::read(&image).unwrap(),
        b"previous image",
        "the old image is untouched"
    );
    assert_eq!(dir_names(dir.path()), ["bad.dump", "i.img"]);
}

#[test]
fn every_should_fail_asset_fails_with_a_located_message() {
    for entry in fs::read_dir(asset("")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("should-fail-") {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = run(bin()
            .env("CFS_PARSE_STRICT", "1")
            .arg("--from-file")
            .arg(&path)
            .arg(dir.path().join("i")));
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(
            stderr(&out).starts_with(&format!("{}:", path.display())),
            "{name}: {}",
            stderr(&out)
        );
        assert!(dir_names(dir.path()).is_empty(), "{name}: nothing written");
    }
}

#[test]
fn writer_errors_name_the_line_of_the_node() {
    // Line 4 is a 2^53-byte file whose 1024-entry chunk map cannot follow its xattrs.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.dump");
    fs::write(
        &src,
        "/ 0 40755 2 0 0 0 0.0 - - -\n\
         /a 0 100644 1 0 0 0 0.0 - - -\n\
         /d 0 40755 2 0 0 0 0.0 - - -\n\
         /d/big 9007199254740992 100644 1 0 0 0 0.0 ab/cd - -\n",
    )
    .unwrap();
    let out = run(bin().arg("--from-file").arg(&src).arg(dir.path().join("i")));
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!("{}:4: SIZE: ", src.display())),
        "{message}"
    );
    assert!(message.contains("chunk map"), "{message}");
    assert_eq!(dir_names(dir.path()), ["big.dump"]);

    // The upstream assets that need such a map are refused the same way.
    let out = run(bin()
        .arg("--from-file")
        .arg(asset("bigfile-xattr.dump"))
        .arg(dir.path().join("i")));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bigfile-xattr.dump:2: SIZE: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_1() {
    let special = asset("special.dump");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (vec!["--bogus".as_ref()], ""),
        (vec!["--from-file".as_ref(), special.as_os_str()], "IMAGE"),
        (
            vec![
                "--print-digest-only".as_ref(),
                "--from-file".as_ref(),
                special.as_os_str(),
                "x".as_ref(),
            ],
            "IMAGE",
        ),
        (
            vec![
                "--min-version=2".as_ref(),
                "--from-file".as_ref(),
                special.as_os_str(),
                "x".as_ref(),
            ],
            "--min-version=2",
        ),
        (
            vec![
                "--max-version=-1".as_ref(),
                "--from-file".as_ref(),
                special.as_os_str(),
                "x".as_ref(),
            ],
            "",
        ),
        (
            vec!["--from-file".as_ref(), "".as_ref(), "x".as_ref()],
            "SOURCE",
        ),
        (
            vec![
                "--from-file".as_ref(),
                "/nonexistent/dump".as_ref(),
                "x".as_ref(),
            ],
            "/nonexistent/dump",
        ),
        (vec![special.as_os_str(), "x".as_ref(), "y".as_ref()], ""),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in cases {
        let out = run(bin().current_dir(dir.path()).args(&args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert!(dir_names(dir.path()).is_empty());
    let help = run(bin().arg("--help"));
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--from-file"));
}

#[test]
fn refuses_to_write_an_image_to_a_terminal() {
    // Run under a pseudo-terminal (python's pty module) so that stdout is a tty.
    let script = "import pty, sys\nsys.exit(pty.spawn(sys.argv[1:]) >> 8)";
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            env!("CARGO_BIN_EXE_mkcomposefs"),
            "--from-file",
        ])
        .arg(asset("special.dump"))
        .arg("-")
        .output();
    let Ok(out) = out else {
        eprintln!("SKIPPED: python3 not available for a pseudo-terminal");
        return;
    };
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("terminal"));
}
