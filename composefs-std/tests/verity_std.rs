//! Userspace digests on several threads, and the fs-verity ioctls on this kernel.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::num::NonZeroUsize;

use composefs_format::verity;
use composefs_std::verity::{
    digest_bytes, digest_file, digest_reader, enable_verity, from_hex, measure_file,
    measure_verity, to_hex, FsVerityError,
};
use proptest::prelude::*;

fn threads(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

fn data(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|k| (k as u8).wrapping_mul(167).wrapping_add(seed) ^ (k >> 12) as u8)
        .collect()
}

fn file_with(content: &[u8]) -> (tempfile::NamedTempFile, File) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(content).unwrap();
    let file = File::open(f.path()).unwrap();
    (f, file)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Hashing on N threads (memory or file) gives the serial digest, for sizes around and
    /// between group (512 KiB) and chunk (4 MiB) boundaries.
    #[test]
    fn parallel_equals_serial(
        size in prop_oneof![
            0usize..8192,
            (0usize..12).prop_map(|g| g * 524_288),
            (1usize..12, 0usize..524_288).prop_map(|(g, r)| g * 524_288 + r),
        ],
        n in 1usize..9,
        seed in any::<u8>(),
    ) {
        let bytes = data(size, seed);
        let serial = verity::digest(&bytes);
        prop_assert_eq!(digest_bytes(&bytes, threads(n)), serial);
        let (_keep, file) = file_with(&bytes);
        prop_assert_eq!(digest_file(&file, threads(n)).unwrap(), serial);
    }
}

#[test]
fn file_digest_ignores_the_file_position() {
    let bytes = data(3 << 20, 7);
    let (_keep, mut file) = file_with(&bytes);
    file.seek(SeekFrom::Start(12345)).unwrap();
    assert_eq!(
        digest_file(&file, threads(2)).unwrap(),
        verity::digest(&bytes)
    );
}

#[test]
fn reader_digest_survives_tiny_and_interrupted_reads() {
    /// Delivers 1 to 7 bytes per call and fails with EINTR every third call.
    struct Awkward<'a> {
        rest: &'a [u8],
        calls: usize,
    }
    impl std::io::Read for Awkward<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = (self.calls % 7 + 1).min(buf.len()).min(self.rest.len());
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }
    let bytes = data(20_000, 3);
    let d = digest_reader(Awkward {
        rest: &bytes,
        calls: 0,
    })
    .unwrap();
    assert_eq!(d, verity::digest(&bytes));
}

#[test]
fn hex_round_trip_and_rejects() {
    let d = verity::digest(b"abc");
    let h = to_hex(&d);
    assert_eq!(
        h,
        "700b6bd8510f0b4f9bac8b9cf0459151a1c4a99f467892bb4bd289a67df8e19c"
    );
    assert_eq!(from_hex(&h), Some(d));
    assert_eq!(
        from_hex(&h.to_uppercase()),
        None,
        "object names are lowercase"
    );
    assert_eq!(from_hex(&h[1..]), None);
    assert_eq!(from_hex(&format!("{}g", &h[1..])), None);
}

/// On a kernel without fs-verity (CONFIG_FS_VERITY unset, as here) both ioctls fail with
/// the typed "unsupported" error and `measure_file` falls back to userspace. On a kernel
/// and filesystem with fs-verity, enabling works and the kernel's digest equals ours.
#[test]
fn ioctls_report_unsupported_or_agree_with_userspace() {
    let bytes = data(100_000, 1);
    let (keep, file) = file_with(&bytes);
    let expected = verity::digest(&bytes);
    match enable_verity(&file) {
        Err(FsVerityError::Unsupported(_)) => {
            assert!(matches!(
                measure_verity(&file),
                Err(FsVerityError::Unsupported(_))
            ));
        }
        Ok(()) => {
            assert_eq!(measure_verity(&file).unwrap(), Some(expected));
        }
        Err(e) => panic!("enable_verity on {}: {e:?}", keep.path().display()),
    }
    assert_eq!(measure_file(&file, threads(2)).unwrap(), expected);
}

/// tmpfs and pipes have no verity ioctls at all (ENOTTY): also "unsupported".
#[test]
fn ioctls_on_a_pipe_are_unsupported() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let e = measure_verity(&reader).unwrap_err();
    assert!(matches!(e, FsVerityError::Unsupported(_)), "{e:?}");
    let e = enable_verity(&reader).unwrap_err();
    assert!(matches!(e, FsVerityError::Unsupported(_)), "{e:?}");
    let io: std::io::Error = e.into();
    assert!(
        io.raw_os_error().is_some(),
        "strerror stays available: {io}"
    );
}

/// A file still open for writing cannot get fs-verity: ETXTBSY where fs-verity exists,
/// "unsupported" here.
#[test]
fn enable_on_a_file_open_for_writing() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"data").unwrap();
    let ro = File::open(f.path()).unwrap();
    let e = enable_verity(&ro).unwrap_err();
    assert!(
        matches!(
            e,
            FsVerityError::OpenForWrite | FsVerityError::Unsupported(_)
        ),
        "{e:?}"
    );
}
