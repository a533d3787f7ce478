//! Whole 4096-byte blocks hashed several at a time where the CPU allows it, with the
//! portable `composefs-format` code as the fallback. The userspace digests of this crate
//! go through here.
//!
//! On x86-64 there are two multi-block engines: sixteen blocks at once in AVX-512 lanes
//! (`sha_avx512`) and two at once on the SHA extensions (`sha_ni`). Which one is faster
//! depends on the core (AVX-512 wins by far on Intel server cores, where SHA-NI runs one
//! stream at about 1.4 GB/s; cores that split 512-bit operations in two may favour
//! SHA-NI), so the first use times both on 256 KiB and keeps the faster. Every engine
//! gives the same hashes; the choice only affects speed. The environment variable
//! `COMPOSEFS_VERITY_ENGINE` (`portable`, `sha-ni` or `avx512`) pins the engine instead,
//! for benchmarks; a name this CPU cannot run is ignored.

use std::sync::OnceLock;

use composefs_format::verity::{FsVerityHasher, VerityError, BLOCK_SIZE, DIGEST_SIZE, GROUP_SIZE};

/// A way to hash whole blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// `composefs_format::verity::hash_block`, one block at a time.
    Portable,
    /// Two blocks at a time on the SHA extensions.
    #[cfg(target_arch = "x86_64")]
    ShaNi,
    /// Sixteen blocks at a time on AVX-512, the rest on the SHA extensions if present.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Engine {
    /// The engines this CPU can run, the portable one first.
    fn available() -> Vec<Engine> {
        let mut engines = vec![Engine::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if super::sha_ni::available() {
                engines.push(Engine::ShaNi);
            }
            if super::sha_avx512::available() {
                engines.push(Engine::Avx512);
            }
        }
        engines
    }

    /// Sets `out[i]` to the SHA-256 of `blocks[i]`, for as many as both have.
    fn hash_into(self, blocks: &[[u8; BLOCK_SIZE]], out: &mut [[u8; DIGEST_SIZE]]) {
        #[cfg(target_arch = "x86_64")]
        let (blocks, out) = match self {
            Engine::Portable => (blocks, out),
            Engine::ShaNi | Engine::Avx512 => {
                let done = if self == Engine::Avx512 {
                    super::sha_avx512::hash_blocks_into(blocks, out)
                } else {
                    0
                };
                let blocks = blocks.get(done..).unwrap_or_default();
                let out = out.get_mut(done..).unwrap_or_default();
                if super::sha_ni::hash_blocks_into(blocks, out) {
                    return;
                }
                (blocks, out)
            }
        };
        for (block, hash) in blocks.iter().zip(out) {
            *hash = composefs_format::verity::hash_block(block);
        }
    }

    /// The engine `COMPOSEFS_VERITY_ENGINE` names, if this CPU can run it.
    fn pinned() -> Option<Engine> {
        Engine::named(&std::env::var("COMPOSEFS_VERITY_ENGINE").ok()?)
    }

    /// The engine called `name`, if this CPU can run it.
    fn named(name: &str) -> Option<Engine> {
        Engine::available().into_iter().find(|e| e.name() == name)
    }

    /// The engine's name in `COMPOSEFS_VERITY_ENGINE`.
    fn name(self) -> &'static str {
        match self {
            Engine::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Engine::ShaNi => "sha-ni",
            #[cfg(target_arch = "x86_64")]
            Engine::Avx512 => "avx512",
        }
    }

    /// The fastest available engine, timed on 64 blocks (best of three runs each).
    fn fastest() -> Engine {
        let engines = Engine::available();
        if engines.len() == 1 {
            return Engine::Portable;
        }
        let data = vec![0x5a_u8; 64 * BLOCK_SIZE];
        let blocks = data.as_chunks::<BLOCK_SIZE>().0;
        let mut out = vec![[0u8; DIGEST_SIZE]; blocks.len()];
        let mut best = vec![std::time::Duration::MAX; engines.len()];
        for _ in 0..3 {
            for (engine, best) in engines.iter().zip(&mut best) {
                let start = std::time::Instant::now();
                engine.hash_into(blocks, &mut out);
                *best = (*best).min(start.elapsed());
            }
        }
        engines
            .iter()
            .zip(&best)
            .min_by_key(|(_, t)| **t)
            .map_or(Engine::Portable, |(e, _)| *e)
    }
}

/// Batches smaller than the AVX-512 engine's (16 blocks) never reach it, so they skip the
/// start-up timing: a small file costs no calibration.
#[cfg(target_arch = "x86_64")]
const CALIBRATE_FROM: usize = super::sha_avx512::LANES;
/// Without x86-64 the portable engine is the only one: nothing to time.
#[cfg(not(target_arch = "x86_64"))]
const CALIBRATE_FROM: usize = usize::MAX;

/// The engine for `blocks` blocks: the pinned one if any; below [`CALIBRATE_FROM`] SHA-NI
/// when present; else the engine timed and chosen once for the process.
fn engine(blocks: usize) -> Engine {
    static PINNED: OnceLock<Option<Engine>> = OnceLock::new();
    static CHOSEN: OnceLock<Engine> = OnceLock::new();
    if let Some(pinned) = *PINNED.get_or_init(Engine::pinned) {
        return pinned;
    }
    if blocks >= CALIBRATE_FROM {
        return *CHOSEN.get_or_init(Engine::fastest);
    }
    #[cfg(target_arch = "x86_64")]
    if super::sha_ni::available() {
        return Engine::ShaNi;
    }
    Engine::Portable
}

/// Sets `out[i]` to the SHA-256 of `blocks[i]`, for as many as both have, on the fastest
/// engine.
pub(crate) fn hash_blocks_into(blocks: &[[u8; BLOCK_SIZE]], out: &mut [[u8; DIGEST_SIZE]]) {
    engine(blocks.len()).hash_into(blocks, out);
}

/// [`composefs_format::verity::hash_group`], on the fastest engine.
pub(crate) fn hash_group(group: &[u8; GROUP_SIZE]) -> [u8; DIGEST_SIZE] {
    let mut tree_block = [0u8; BLOCK_SIZE];
    hash_blocks_into(
        group.as_chunks::<BLOCK_SIZE>().0,
        tree_block.as_chunks_mut::<DIGEST_SIZE>().0,
    );
    let mut root = [[0u8; DIGEST_SIZE]];
    hash_blocks_into(&[tree_block], &mut root);
    let [root] = root;
    root
}

/// [`FsVerityHasher::update`], with the same result but faster: once the hasher is at a
/// block boundary, whole blocks are hashed in batches on the fastest engine and appended
/// by their hashes.
///
/// # Errors
/// [`VerityError::TooLarge`] past 2^64 - 1 bytes.
pub(crate) fn update(hasher: &mut FsVerityHasher, data: &[u8]) -> Result<(), VerityError> {
    /// Blocks hashed per batch: 256 KiB of data, 2 KiB of hashes on the stack.
    const BATCH_BLOCKS: usize = 64;

    let into_block = usize::try_from(hasher.data_size() % BLOCK_SIZE as u64).unwrap_or(0);
    let to_boundary = BLOCK_SIZE.saturating_sub(into_block) % BLOCK_SIZE;
    let (head, rest) = data.split_at(data.len().min(to_boundary));
    hasher.update(head)?;
    let (blocks, tail) = rest.as_chunks::<BLOCK_SIZE>();
    for batch in blocks.chunks(BATCH_BLOCKS) {
        let mut hashes = [[0u8; DIGEST_SIZE]; BATCH_BLOCKS];
        hash_blocks_into(batch, &mut hashes);
        for hash in hashes.iter().take(batch.len()) {
            hasher.update_block_hash(hash)?;
        }
    }
    hasher.update(tail)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `len` pseudo-random bytes (xorshift), different in every block; for the engines'
    /// tests too.
    pub(in crate::verity) fn pattern(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[2]
            })
            .collect()
    }

    /// Every engine this CPU has gives the portable hashes, for block counts around the
    /// engines' widths, and the portable group hash.
    #[test]
    fn every_engine_hashes_like_the_portable_code() {
        let engines = Engine::available();
        eprintln!(
            "engines on this CPU: {engines:?}; chosen: {:?}",
            engine(usize::MAX)
        );
        let data = pattern(GROUP_SIZE + 3 * BLOCK_SIZE, 11);
        let blocks = data.as_chunks::<BLOCK_SIZE>().0;
        for engine in engines {
            for n in [0, 1, 2, 3, 15, 16, 17, 31, 33, 128, 131] {
                let mut out = vec![[0u8; DIGEST_SIZE]; n];
                engine.hash_into(&blocks[..n], &mut out);
                for (b, o) in blocks.iter().zip(&out) {
                    assert_eq!(
                        *o,
                        composefs_format::verity::hash_block(b),
                        "{engine:?}, {n} blocks"
                    );
                }
            }
        }
        let group: &[u8; GROUP_SIZE] = data[..GROUP_SIZE].try_into().unwrap();
        assert_eq!(
            hash_group(group),
            composefs_format::verity::hash_group(group)
        );
    }

    #[test]
    fn engines_are_found_by_name() {
        for engine in Engine::available() {
            assert_eq!(Engine::named(engine.name()), Some(engine));
        }
        assert_eq!(Engine::named("portable"), Some(Engine::Portable));
        assert_eq!(Engine::named("sha2"), None);
        assert_eq!(Engine::named(""), None);
    }

    /// On x86-64 CPUs with the extensions, the SIMD engines are there to be chosen (the
    /// tests above then cover them).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_engines_are_offered_when_the_cpu_has_them() {
        let engines = Engine::available();
        assert_eq!(
            engines.contains(&Engine::ShaNi),
            std::arch::is_x86_feature_detected!("sha")
        );
        assert_eq!(
            engines.contains(&Engine::Avx512),
            std::arch::is_x86_feature_detected!("avx512bw")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any chunking, starting anywhere in a block: the portable digest.
        #[test]
        fn update_is_the_portable_update(
            size in 0usize..300_000,
            seed: u64,
            cuts in proptest::collection::vec(0usize..70_000, 0..12),
        ) {
            let data = pattern(size, seed);
            let mut h = FsVerityHasher::new();
            let mut rest = data.as_slice();
            for cut in cuts {
                let (now, later) = rest.split_at(cut.min(rest.len()));
                update(&mut h, now).unwrap();
                rest = later;
            }
            update(&mut h, rest).unwrap();
            prop_assert_eq!(h.finalize(), composefs_format::verity::digest(&data));
        }

        /// Random groups: the portable group hash.
        #[test]
        fn random_groups_hash_like_the_portable_code(seed: u64) {
            let data = pattern(GROUP_SIZE, seed);
            let group: &[u8; GROUP_SIZE] = data.as_slice().try_into().unwrap();
            prop_assert_eq!(hash_group(group), composefs_format::verity::hash_group(group));
        }
    }
}
