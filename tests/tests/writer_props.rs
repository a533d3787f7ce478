//! Property tests of the writer on arbitrary trees: valid trees always make an image that
//! the structural check accepts, the same bytes every time; trees with fields mutated
//! into nonsense never make it panic, and whatever it accepts still passes the check.

use composefs_conformance::arb;
use composefs_format::tree::{NodeId, Tree, Xattr};
use composefs_format::write::{self, Options, Structure, WriteErrorKind};
use proptest::prelude::*;

fn options() -> impl Strategy<Value = Options> {
    (0u32..=1, 0u32..=1).prop_map(|(min_version, max_version)| Options {
        min_version,
        max_version,
    })
}

/// Writes `tree`; `None` when the writer refuses it.
fn write(tree: &Tree, options: &Options) -> Result<Vec<u8>, write::WriteError> {
    let mut out = Vec::new();
    let layout = write::write_image(tree, options, &mut out).map_err(|e| match e {
        write::WriteImageError::Plan(e) => e,
        e => panic!("{e}"),
    })?;
    assert_eq!(layout.image_size(), out.len() as u64);
    Ok(out)
}

fn assert_sound(image: &[u8]) -> Result<(), TestCaseError> {
    let report = composefs_format::check::check_bytes(image);
    let problems: Vec<String> = report
        .problems()
        .iter()
        .take(5)
        .map(|p| p.error.to_string())
        .collect();
    prop_assert!(report.is_sound(), "{problems:?}");
    Ok(())
}

/// One way to break a node's fields.
#[derive(Debug, Clone)]
enum Mutation {
    Mode(u32),
    Size(u64),
    Content(Vec<u8>),
    Payload(Vec<u8>),
    Digest,
    Xattr(Vec<u8>, usize),
    Ids(u32, u32, u32),
    Rdev(u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<u32>().prop_map(Mutation::Mode),
        prop_oneof![
            any::<u64>(),
            0u64..10_000,
            Just(1u64 << 53),
            Just((1 << 53) + 1)
        ]
        .prop_map(Mutation::Size),
        proptest::collection::vec(any::<u8>(), 0..5100).prop_map(Mutation::Content),
        proptest::collection::vec(
            prop_oneof![Just(b'/'), Just(b'.'), Just(0u8), Just(b'a')],
            0..12
        )
        .prop_map(Mutation::Payload),
        Just(Mutation::Digest),
        (
            proptest::collection::vec(prop_oneof![Just(0u8), Just(b'a'), Just(b'.')], 0..300),
            0usize..70_000
        )
            .prop_map(|(k, v)| Mutation::Xattr(k, v)),
        (id(), id(), id()).prop_map(|(a, b, c)| Mutation::Ids(a, b, c)),
        any::<u32>().prop_map(Mutation::Rdev),
    ]
}

/// Owner and link count values around the compact-inode and format limits.
fn id() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(65535),
        Just(65536),
        Just(u32::MAX),
        any::<u32>()
    ]
}

fn mutate(tree: &mut Tree, at: usize, m: Mutation) {
    let ids: Vec<NodeId> = tree.iter().map(|(id, _)| id).collect();
    let node = tree.get_mut(ids[at % ids.len()]).expect("node");
    match m {
        // Keep directories directories so that the tree stays valid.
        Mutation::Mode(mode) if !node.is_dir() => node.mode = mode,
        Mutation::Mode(mode) => node.mode = (node.mode & 0o170000) | (mode & 0o7777),
        Mutation::Size(size) => node.size = size,
        Mutation::Content(c) => node.content = Some(c),
        Mutation::Payload(p) => node.payload = Some(p),
        Mutation::Digest => node.digest = Some([7; 32]),
        Mutation::Xattr(key, len) => node.xattrs.push(Xattr {
            key,
            value: vec![1; len],
        }),
        Mutation::Ids(uid, gid, nlink) => (node.uid, node.gid, node.nlink) = (uid, gid, nlink),
        Mutation::Rdev(rdev) => node.rdev = rdev,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn valid_trees_write_sound_deterministic_images(tree in arb::tree(), options in options()) {
        match write(&tree, &options) {
            Ok(image) => {
                assert_sound(&image)?;
                prop_assert_eq!(write(&tree, &options).ok(), Some(image.clone()));
                // describe_offset covers every byte, in order.
                let layout = write::plan(&tree, &options).expect("planned once already");
                let mut at = 0u64;
                while at < image.len() as u64 {
                    let region = layout.describe_offset(at);
                    prop_assert!(region.start <= at && at < region.end);
                    prop_assert!(region.structure != Structure::PastEnd);
                    at = region.end;
                }
            }
            // Valid trees may hold files of up to 2^53 bytes whose chunk map cannot follow
            // their xattrs inline: the only refusal allowed.
            Err(e) => prop_assert!(matches!(e.kind(), WriteErrorKind::ChunkMapNotInline { .. }), "{e}"),
        }
    }

    #[test]
    fn mutated_trees_are_refused_or_written_soundly(
        tree in arb::tree_with(12),
        mutations in proptest::collection::vec((any::<usize>(), mutation()), 1..4),
        options in options(),
    ) {
        let mut tree = tree;
        for (at, m) in mutations {
            mutate(&mut tree, at, m);
        }
        if let Ok(image) = write(&tree, &options) {
            assert_sound(&image)?;
        }
    }
}
