//! The fs-verity digest of a file: SHA-256, 4096-byte Merkle blocks, no salt (SPEC.md 8.1).
//!
//! [`FsVerityHasher`] computes it in one streaming pass with a small, fixed state: one running
//! SHA-256 context for the current data block and one per Merkle tree level, plus counters.
//! It never buffers a 4 KiB block (a partial block lives inside its SHA-256 context), never
//! allocates, and hashes whole blocks straight from the caller's slice, so it runs at the
//! speed of SHA-256 itself.
//!
//! Parallel hashing splits the data at [`GROUP_SIZE`] boundaries: each 512 KiB group is one
//! block of the lowest tree level, so [`hash_group`] can run on any thread, and
//! [`FsVerityHasher::update_group_hash`] feeds its result back in order.
//!
//! The empty file has an all-zero root hash, as in the kernel and fsverity-utils (the
//! reference libcomposefs hashes one zero block instead; SPEC.md section 10).

use sha2::{Digest as _, Sha256};

/// Size of a data block and of a Merkle tree block.
pub const BLOCK_SIZE: usize = 4096;
/// `log2(BLOCK_SIZE)`, as stored in the descriptor.
pub const LOG_BLOCK_SIZE: u8 = 12;
/// Size of one SHA-256 hash, and of the digest.
pub const DIGEST_SIZE: usize = 32;
/// `FS_VERITY_HASH_ALG_SHA256`, as stored in the descriptor.
pub const HASH_ALG_SHA256: u8 = 1;
/// Descriptor format version.
pub const DESCRIPTOR_VERSION: u8 = 1;
/// Size of the descriptor whose SHA-256 is the digest.
pub const DESCRIPTOR_SIZE: usize = 256;
/// Hashes that fit in one Merkle tree block.
pub const HASHES_PER_BLOCK: usize = BLOCK_SIZE / DIGEST_SIZE;
/// Data bytes covered by one block of the lowest tree level: 128 data blocks, 512 KiB.
pub const GROUP_SIZE: usize = BLOCK_SIZE * HASHES_PER_BLOCK;
/// Tree levels needed for the largest possible input (`u64::MAX` bytes): 2^52 data blocks,
/// and each level divides the count by 2^7, so levels hold at most 2^45, 2^38, 2^31, 2^24,
/// 2^17, 2^10, 2^3 and 1 blocks.
pub const MAX_TREE_LEVELS: usize = 8;

const BLOCK_SIZE_U64: u64 = BLOCK_SIZE as u64;
const GROUP_SIZE_U64: u64 = GROUP_SIZE as u64;
/// `HASHES_PER_BLOCK` as the type of a level's counter.
const HASHES_PER_BLOCK_U8: u8 = 128;

/// Zero padding for partial blocks.
static ZEROS: [u8; BLOCK_SIZE] = [0; BLOCK_SIZE];

/// What can go wrong while hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerityError {
    /// The data would exceed `u64::MAX` bytes, the largest size the descriptor can hold.
    #[error("fs-verity input of {data_size} bytes plus {more} more exceeds 2^64 - 1 bytes")]
    TooLarge {
        /// Bytes hashed so far.
        data_size: u64,
        /// Bytes offered in addition.
        more: u64,
    },
    /// A block or group hash was offered when the data hashed so far does not end on a
    /// [`BLOCK_SIZE`] or [`GROUP_SIZE`] boundary.
    #[error("fs-verity hash of {boundary} bytes offered at data offset {data_size}, not a multiple of {boundary}")]
    Misaligned {
        /// Bytes hashed so far.
        data_size: u64,
        /// The boundary the data must end on: 4096 for a block hash, 524288 for a group hash.
        boundary: u64,
    },
}

/// The result of hashing: the Merkle root hash and the data size. The fs-verity digest is
/// the SHA-256 of the [`descriptor`](Self::descriptor) built from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerkleRoot {
    /// Root hash of the Merkle tree: all zero for empty data, the hash of the zero-padded
    /// data block for at most 4096 bytes, else the hash of the single top tree block.
    pub root_hash: [u8; DIGEST_SIZE],
    /// Size of the data in bytes.
    pub data_size: u64,
}

impl MerkleRoot {
    /// The 256-byte fs-verity descriptor (`struct fsverity_descriptor`).
    #[must_use]
    pub fn descriptor(&self) -> [u8; DESCRIPTOR_SIZE] {
        let mut d = [0u8; DESCRIPTOR_SIZE];
        let header = [DESCRIPTOR_VERSION, HASH_ALG_SHA256, LOG_BLOCK_SIZE, 0];
        let size = self.data_size.to_le_bytes();
        // Layout: version, hash_algorithm, log_blocksize, salt_size (bytes 0..4), reserved
        // u32 (4..8), data_size le64 (8..16), root_hash[64] (16..80), salt[32], reserved[144].
        let fields = header
            .iter()
            .chain(&[0u8; 4])
            .chain(&size)
            .chain(&self.root_hash);
        for (out, byte) in d.iter_mut().zip(fields) {
            *out = *byte;
        }
        d
    }

    /// The fs-verity digest: SHA-256 of the descriptor.
    #[must_use]
    pub fn digest(&self) -> [u8; DIGEST_SIZE] {
        Sha256::digest(self.descriptor()).into()
    }
}

/// One Merkle tree level: the running hash of its current block and how many hashes that
/// block holds so far. A full block is only hashed when the next hash arrives, so at the end
/// the top level still holds its single block and its hash is the root.
#[derive(Clone, Debug)]
struct Level {
    block: Sha256,
    hashes: u8,
}

impl Level {
    fn new() -> Self {
        Self {
            block: Sha256::new(),
            hashes: 0,
        }
    }

    /// Zero-pads the current block, returns its hash and starts an empty block.
    fn finish_block(&mut self) -> [u8; DIGEST_SIZE] {
        let used = usize::from(self.hashes).saturating_mul(DIGEST_SIZE);
        self.block.update(ZEROS.get(used..).unwrap_or_default());
        self.hashes = 0;
        self.block.finalize_reset().into()
    }
}

/// Streaming fs-verity digest (SHA-256, 4096-byte blocks, no salt).
///
/// Feed the data with [`update`](Self::update) in chunks of any size, then call
/// [`finalize`](Self::finalize). The state is about 1 KiB and never allocates.
///
/// ```
/// use composefs_format::verity::FsVerityHasher;
/// let mut h = FsVerityHasher::new();
/// h.update(b"ab").unwrap();
/// h.update(b"c").unwrap();
/// assert_eq!(h.finalize()[..4], [0x70, 0x0b, 0x6b, 0xd8]);
/// ```
#[derive(Clone, Debug)]
pub struct FsVerityHasher {
    /// Running hash of the current, incomplete data block.
    data_block: Sha256,
    /// Bytes in the current data block (0..4096; a full block is hashed at once).
    in_block: usize,
    /// Bytes hashed so far.
    data_size: u64,
    /// The hash most recently appended to a tree level from outside (a data block hash or
    /// a group hash, not a carry): it is the root when it is the only pending hash.
    last_pushed_hash: [u8; DIGEST_SIZE],
    /// Tree levels, lowest (hashes of data blocks) first.
    levels: [Level; MAX_TREE_LEVELS],
}

impl Default for FsVerityHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl FsVerityHasher {
    /// A hasher for empty data.
    #[must_use]
    pub fn new() -> Self {
        Self {
            data_block: Sha256::new(),
            in_block: 0,
            data_size: 0,
            last_pushed_hash: [0; DIGEST_SIZE],
            levels: core::array::from_fn(|_| Level::new()),
        }
    }

    /// Bytes hashed so far.
    #[must_use]
    pub fn data_size(&self) -> u64 {
        self.data_size
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// [`VerityError::TooLarge`] when the total would exceed `u64::MAX` bytes; nothing is
    /// consumed then.
    pub fn update(&mut self, data: &[u8]) -> Result<(), VerityError> {
        let more = u64::try_from(data.len()).unwrap_or(u64::MAX);
        self.data_size = self
            .data_size
            .checked_add(more)
            .ok_or(VerityError::TooLarge {
                data_size: self.data_size,
                more,
            })?;
        let mut rest = data;
        if self.in_block > 0 {
            let room = BLOCK_SIZE.saturating_sub(self.in_block);
            let (head, tail) = rest.split_at(room.min(rest.len()));
            self.data_block.update(head);
            self.in_block = self.in_block.saturating_add(head.len());
            rest = tail;
            if self.in_block < BLOCK_SIZE {
                return Ok(());
            }
            let hash: [u8; DIGEST_SIZE] = self.data_block.finalize_reset().into();
            self.in_block = 0;
            self.push_data_block_hash(&hash);
        }
        // Whole blocks are hashed straight from the caller's slice.
        let mut blocks = rest.chunks_exact(BLOCK_SIZE);
        for block in &mut blocks {
            let hash: [u8; DIGEST_SIZE] = Sha256::digest(block).into();
            self.push_data_block_hash(&hash);
        }
        let tail = blocks.remainder();
        self.data_block.update(tail);
        self.in_block = tail.len();
        Ok(())
    }

    /// Appends [`GROUP_SIZE`] bytes of data that were hashed elsewhere with [`hash_group`].
    ///
    /// This is how a file is hashed in parallel: split it at multiples of [`GROUP_SIZE`],
    /// hash the groups on any threads, feed the group hashes here in order, then feed the
    /// remaining tail (less than one group) with [`update`](Self::update).
    ///
    /// # Errors
    /// [`VerityError::Misaligned`] when the data hashed so far is not a multiple of
    /// [`GROUP_SIZE`]; [`VerityError::TooLarge`] when the total would exceed `u64::MAX`.
    pub fn update_group_hash(&mut self, group_hash: &[u8; DIGEST_SIZE]) -> Result<(), VerityError> {
        if self.data_size % GROUP_SIZE_U64 != 0 {
            return Err(VerityError::Misaligned {
                data_size: self.data_size,
                boundary: GROUP_SIZE_U64,
            });
        }
        self.data_size =
            self.data_size
                .checked_add(GROUP_SIZE_U64)
                .ok_or(VerityError::TooLarge {
                    data_size: self.data_size,
                    more: GROUP_SIZE_U64,
                })?;
        // The size was a multiple of GROUP_SIZE, so the data block is empty and the lowest
        // level is empty or holds one full block, which must move up first.
        if let Some(lowest) = self.levels.first_mut() {
            if lowest.hashes == HASHES_PER_BLOCK_U8 {
                let hash = lowest.finish_block();
                self.push_tree_hash(1, &hash);
            }
        }
        self.push_tree_hash(1, group_hash);
        Ok(())
    }

    /// Appends one [`BLOCK_SIZE`]-byte block of data whose SHA-256 was computed elsewhere
    /// (for instance several blocks at a time with SIMD). Equivalent to
    /// [`update`](Self::update) with the block itself.
    ///
    /// # Errors
    /// [`VerityError::Misaligned`] when the data hashed so far is not a multiple of
    /// [`BLOCK_SIZE`]; [`VerityError::TooLarge`] when the total would exceed `u64::MAX`.
    /// Nothing is consumed then.
    pub fn update_block_hash(&mut self, block_hash: &[u8; DIGEST_SIZE]) -> Result<(), VerityError> {
        if self.in_block != 0 {
            return Err(VerityError::Misaligned {
                data_size: self.data_size,
                boundary: BLOCK_SIZE_U64,
            });
        }
        self.data_size =
            self.data_size
                .checked_add(BLOCK_SIZE_U64)
                .ok_or(VerityError::TooLarge {
                    data_size: self.data_size,
                    more: BLOCK_SIZE_U64,
                })?;
        self.push_data_block_hash(block_hash);
        Ok(())
    }

    /// Finishes and returns the fs-verity digest.
    #[must_use]
    pub fn finalize(self) -> [u8; DIGEST_SIZE] {
        self.finalize_root().digest()
    }

    /// Finishes and returns the Merkle root hash and data size, from which the descriptor
    /// and the digest follow.
    #[must_use]
    pub fn finalize_root(mut self) -> MerkleRoot {
        let data_size = self.data_size;
        if self.in_block > 0 {
            self.data_block
                .update(ZEROS.get(self.in_block..).unwrap_or_default());
            let hash: [u8; DIGEST_SIZE] = self.data_block.finalize_reset().into();
            self.in_block = 0;
            self.push_data_block_hash(&hash);
        }
        let root_hash = self.finish_tree();
        MerkleRoot {
            root_hash,
            data_size,
        }
    }

    fn push_data_block_hash(&mut self, hash: &[u8; DIGEST_SIZE]) {
        self.push_tree_hash(0, hash);
    }

    /// Appends `hash` to tree level `level`, first moving that level's full block (if any)
    /// up, and so on upwards.
    fn push_tree_hash(&mut self, level: usize, hash: &[u8; DIGEST_SIZE]) {
        self.last_pushed_hash = *hash;
        let mut carry = *hash;
        // `skip` bounds the walk by the array: the top level never fills (see
        // MAX_TREE_LEVELS), so the loop always ends with `break`.
        for l in self.levels.iter_mut().skip(level) {
            if l.hashes < HASHES_PER_BLOCK_U8 {
                l.block.update(carry);
                l.hashes = l.hashes.saturating_add(1);
                break;
            }
            let full = l.finish_block();
            l.block.update(carry);
            l.hashes = 1;
            carry = full;
        }
    }

    /// The root hash: all zero without data; the pending hash itself when it is the only
    /// one (one data block, or one group and nothing else); else the hash of the top
    /// block, found by hashing the pending block of each level from the lowest pending
    /// one up and appending each result to the level above.
    fn finish_tree(&mut self) -> [u8; DIGEST_SIZE] {
        let pending = |levels: &[Level], from: usize| {
            levels
                .get(from..)
                .unwrap_or_default()
                .iter()
                .any(|l| l.hashes > 0)
        };
        let Some(mut level) = self.levels.iter().position(|l| l.hashes > 0) else {
            return [0; DIGEST_SIZE];
        };
        // Levels below `level` are empty, so its single hash was appended from outside
        // (a carry always leaves the level below it non-empty).
        let single = self.levels.get(level).is_some_and(|l| l.hashes == 1);
        if single && !pending(&self.levels, level.saturating_add(1)) {
            return self.last_pushed_hash;
        }
        loop {
            let Some(current) = self.levels.get_mut(level) else {
                // Unreachable: the top level holds the last pending block (see
                // MAX_TREE_LEVELS) and the loop returns there.
                return [0; DIGEST_SIZE];
            };
            let hash = current.finish_block();
            let above = level.saturating_add(1);
            if !pending(&self.levels, above) {
                return hash;
            }
            self.push_tree_hash(above, &hash);
            level = above;
        }
    }
}

/// Hash of one block of the lowest tree level: the SHA-256 of the 128 concatenated SHA-256
/// hashes of the 4096-byte blocks of `group`. Input to
/// [`FsVerityHasher::update_group_hash`]; any thread may compute it.
#[must_use]
pub fn hash_group(group: &[u8; GROUP_SIZE]) -> [u8; DIGEST_SIZE] {
    let mut tree_block = Sha256::new();
    for block in group.chunks_exact(BLOCK_SIZE) {
        tree_block.update(Sha256::digest(block));
    }
    tree_block.finalize().into()
}

/// The hash of one full block, data or tree: the plain SHA-256 of its 4096 bytes. Input to
/// [`FsVerityHasher::update_block_hash`]; any code may compute it, several blocks at a
/// time if it can.
#[must_use]
pub fn hash_block(block: &[u8; BLOCK_SIZE]) -> [u8; DIGEST_SIZE] {
    Sha256::digest(block).into()
}

/// The fs-verity digest of `data`, in one call.
#[must_use]
pub fn digest(data: &[u8]) -> [u8; DIGEST_SIZE] {
    let mut h = FsVerityHasher::new();
    // A slice is shorter than 2^64 bytes, so this cannot fail.
    match h.update(data) {
        Ok(()) => h.finalize(),
        Err(_) => [0; DIGEST_SIZE],
    }
}

/// Size of the Merkle tree the kernel stores for `data_size` bytes of data (root hash and
/// descriptor excluded): 0 for at most one data block, else 4096 bytes per tree block.
#[must_use]
pub fn merkle_tree_size(data_size: u64) -> u64 {
    let mut blocks = data_size.div_ceil(BLOCK_SIZE_U64);
    let per_block = HASHES_PER_BLOCK as u64;
    let mut tree_blocks: u64 = 0;
    while blocks > 1 {
        blocks = blocks.div_ceil(per_block);
        tree_blocks = tree_blocks.saturating_add(blocks);
    }
    tree_blocks.saturating_mul(BLOCK_SIZE_U64)
}

impl crate::sink::Sink for FsVerityHasher {
    type Error = VerityError;

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.update(bytes)
    }
}

#[cfg(feature = "std")]
impl std::io::Write for FsVerityHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::panic
)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Which bytes a vector hashes.
    #[derive(Clone, Copy, Debug)]
    enum Content {
        Zeros,
        /// Byte k is `k mod 251`.
        Pattern,
        Literal(&'static [u8]),
    }

    /// (content, size, digest, Merkle tree bytes). The 22 vectors of the fsverity-utils 1.5
    /// table (hardening notes 4.1) plus two more computed here with
    /// `fsverity digest --hash-alg=sha256 --block-size=4096`: exactly 64 MiB (the top level
    /// of 128 full blocks) and three groups plus 5 bytes.
    const VECTORS: &[(Content, usize, &str, u64)] = &[
        (
            Content::Literal(b""),
            0,
            "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95",
            0,
        ),
        (
            Content::Literal(b"a"),
            1,
            "bce75948b9e7510293f8f2720412af9697c1479281323f3f220623fb8e94b557",
            0,
        ),
        (
            Content::Literal(b"abc"),
            3,
            "700b6bd8510f0b4f9bac8b9cf0459151a1c4a99f467892bb4bd289a67df8e19c",
            0,
        ),
        (
            Content::Zeros,
            1,
            "b803429503d95915829b29fdbc8bbad142f3abfd11b1cadf5526582e685c0551",
            0,
        ),
        (
            Content::Pattern,
            4095,
            "5f4953aad672b0188023d6cd6fbce9d09508eb7dad165b6298ce0086bc1e72db",
            0,
        ),
        (
            Content::Zeros,
            4095,
            "5372beb83c78537c8970c8361e3254119fafdf1763854ecd57d3f0fe2da7c719",
            0,
        ),
        (
            Content::Zeros,
            4096,
            "babc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e",
            0,
        ),
        (
            Content::Pattern,
            4096,
            "13e9b8848ae484a36acb3f3cac0ceb2f7601e96633d15c92f9bd3dd44e492157",
            0,
        ),
        (
            Content::Zeros,
            4097,
            "093756e4ea9683329106d4a16982682ed182c14bf076463a9e7f97305cbac743",
            4096,
        ),
        (
            Content::Pattern,
            4097,
            "b0d074abef4d544404facfab6ba242f6a8ccbde90f1325cd286f3c8aa8d0f8aa",
            4096,
        ),
        (
            Content::Zeros,
            8192,
            "be54121da3877f8852c65136d731784f134c4dd9d95071502e80d7be9f99b263",
            4096,
        ),
        (
            Content::Pattern,
            8192,
            "e48d50c56c4f0178a98a035cb91d66be328eeff78bbddaa35c5ec4cc0d8340c0",
            4096,
        ),
        (
            Content::Zeros,
            524288,
            "2d15bd7832895de85aa3d5bdfb57251e27bbec75ff467408340ab3eba858a2e1",
            4096,
        ),
        (
            Content::Pattern,
            524288,
            "d82861203d50ae9b60948504a704f35f5118bd229aeb1a22d6dae47b1767c4c4",
            4096,
        ),
        (
            Content::Zeros,
            524289,
            "e4143a5705610b7ad2eb85482cfc033c7062a89b9faf9118603f592d53fd10e0",
            12288,
        ),
        (
            Content::Pattern,
            524289,
            "4dc6905041c9c4ee73e13b53f63f5d289c46da359b664a965ead7f8cc4d799d4",
            12288,
        ),
        (
            Content::Zeros,
            1048576,
            "feb19a23e72cb1b8f935d668a09ecaad0bf7c5b9cdfa6dbba7c88a9998ed2b87",
            12288,
        ),
        (
            Content::Pattern,
            1048576,
            "93c995656d665b81c3a87eed032fcf06a8f9cecef51e3f5e5af7fa59fef1d439",
            12288,
        ),
        (
            Content::Zeros,
            1048577,
            "5ceb20530731a1a1cea6a4badc2fabecc8b9f15481657e1eb8fab82d8b2f2268",
            16384,
        ),
        (
            Content::Pattern,
            1048577,
            "89f2376c7699bfe271478a8e3356d434d4a35784edce47fac74c8e5bc7456c1d",
            16384,
        ),
        (
            Content::Zeros,
            67108865,
            "be5993679f703697692cc6ce69e480edc9721baff591795438ae8097275c0687",
            540672,
        ),
        (
            Content::Pattern,
            67108865,
            "acba6554fbff4e8b2fc0361086b9e8ed6afbbd3196ade159c0f3e2bf9ecb2ed1",
            540672,
        ),
        (
            Content::Pattern,
            67108864,
            "196650e8bd05f8516c0ede56deeb4d1ff2be9809dc2d827261db4a7773957567",
            528384,
        ),
        (
            Content::Pattern,
            1572869,
            "fb3dc0108f545077cc1b7ad4351419bc0220b5c99977f2e4e40bd1c7db34ec45",
            20480,
        ),
    ];

    fn content(c: Content, n: usize) -> Vec<u8> {
        match c {
            Content::Zeros => std::vec![0; n],
            Content::Pattern => (0..n).map(|k| (k % 251) as u8).collect(),
            Content::Literal(b) => b.to_vec(),
        }
    }

    fn hex(bytes: &[u8]) -> std::string::String {
        bytes.iter().map(|b| std::format!("{b:02x}")).collect()
    }

    /// An independent oracle: builds every tree level in memory, as the definition says.
    fn naive_digest(data: &[u8]) -> [u8; 32] {
        let root: [u8; 32] = if data.is_empty() {
            [0; 32]
        } else {
            let mut level: Vec<u8> = data.to_vec();
            loop {
                let mut next = Vec::new();
                for block in level.chunks(BLOCK_SIZE) {
                    let mut padded = block.to_vec();
                    padded.resize(BLOCK_SIZE, 0);
                    next.extend_from_slice(&Sha256::digest(&padded));
                }
                if next.len() == 32 {
                    break next.try_into().unwrap();
                }
                level = next;
            }
        };
        let mut d = [0u8; 256];
        d[..4].copy_from_slice(&[1, 1, 12, 0]);
        d[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
        d[16..48].copy_from_slice(&root);
        Sha256::digest(d).into()
    }

    #[test]
    fn all_vectors_one_shot() {
        for &(c, n, want, _) in VECTORS {
            let data = content(c, n);
            assert_eq!(data.len(), n);
            assert_eq!(hex(&digest(&data)), want, "{c:?} size {n}");
        }
    }

    #[test]
    fn all_vectors_byte_by_byte_and_odd_chunks() {
        for &(c, n, want, _) in VECTORS.iter().filter(|v| v.1 <= 1_048_577) {
            let data = content(c, n);
            let mut h = FsVerityHasher::new();
            for byte in &data {
                h.update(core::slice::from_ref(byte)).unwrap();
            }
            assert_eq!(hex(&h.finalize()), want, "{c:?} size {n}, 1-byte updates");
            let mut h = FsVerityHasher::new();
            for chunk in data.chunks(4099) {
                h.update(chunk).unwrap();
            }
            assert_eq!(
                hex(&h.finalize()),
                want,
                "{c:?} size {n}, 4099-byte updates"
            );
        }
    }

    #[test]
    fn all_vectors_with_group_hashes() {
        for &(c, n, want, _) in VECTORS {
            let data = content(c, n);
            let mut groups = data.chunks_exact(GROUP_SIZE);
            let mut h = FsVerityHasher::new();
            for g in &mut groups {
                h.update_group_hash(&hash_group(g.try_into().unwrap()))
                    .unwrap();
            }
            h.update(groups.remainder()).unwrap();
            assert_eq!(hex(&h.finalize()), want, "{c:?} size {n}");
        }
    }

    /// Whole blocks fed as their hashes, the tail as bytes: the same digests.
    #[test]
    fn all_vectors_with_block_hashes() {
        for &(c, n, want, _) in VECTORS {
            let data = content(c, n);
            let mut blocks = data.chunks_exact(BLOCK_SIZE);
            let mut h = FsVerityHasher::new();
            for b in &mut blocks {
                h.update_block_hash(&hash_block(b.try_into().unwrap()))
                    .unwrap();
            }
            h.update(blocks.remainder()).unwrap();
            assert_eq!(hex(&h.finalize()), want, "{c:?} size {n}");
        }
    }

    #[test]
    fn merkle_tree_sizes_match_fsverity_utils() {
        for &(c, n, _, tree) in VECTORS {
            assert_eq!(merkle_tree_size(n as u64), tree, "{c:?} size {n}");
        }
        // 2^64 - 1 bytes: 2^52 data blocks, eight levels, no overflow.
        let blocks: u64 =
            (1 << 45) + (1 << 38) + (1 << 31) + (1 << 24) + (1 << 17) + (1 << 10) + 8 + 1;
        assert_eq!(merkle_tree_size(u64::MAX), blocks * 4096);
    }

    #[test]
    fn descriptor_of_a() {
        let mut h = FsVerityHasher::new();
        h.update(b"a").unwrap();
        let root = h.finalize_root();
        let d = root.descriptor();
        assert_eq!(
            hex(&d[..48]),
            "01010c00000000000100000000000000\
             344bcc8eac81250e918967cb0ba2d1cd1ea9d548141cf318f2025c2ba93b6ed2"
        );
        assert!(d[48..].iter().all(|&b| b == 0));
        assert_eq!(root.data_size, 1);
        assert_eq!(Sha256::digest(d)[..], root.digest()[..]);
    }

    #[test]
    fn empty_root_is_zero_not_a_zero_block() {
        let root = FsVerityHasher::new().finalize_root();
        assert_eq!(root.root_hash, [0; 32]);
        assert_ne!(
            hex(&root.digest()),
            // libcomposefs' value, from hashing one zero block.
            "cfc3391077edfd51859f6e5e16e03f82b1da3ee1a35d418b0d0b3b57740b4405"
        );
    }

    #[test]
    fn group_hash_after_partial_data_is_refused() {
        let mut h = FsVerityHasher::new();
        h.update(&[1; 4096]).unwrap();
        let before = h.clone().finalize();
        assert_eq!(
            h.update_group_hash(&[0; 32]),
            Err(VerityError::Misaligned {
                data_size: 4096,
                boundary: GROUP_SIZE as u64
            })
        );
        assert_eq!(h.finalize(), before, "a refused group hash changes nothing");
    }

    #[test]
    fn block_hash_after_partial_data_is_refused() {
        let mut h = FsVerityHasher::new();
        h.update(&[1; 100]).unwrap();
        let before = h.clone().finalize();
        let e = h.update_block_hash(&[0; 32]).unwrap_err();
        assert_eq!(
            e,
            VerityError::Misaligned {
                data_size: 100,
                boundary: 4096
            }
        );
        let text = std::format!("{e}");
        assert!(
            text.contains("offset 100, not a multiple of 4096"),
            "{text}"
        );
        assert_eq!(h.finalize(), before, "a refused block hash changes nothing");
    }

    #[test]
    fn size_overflow_is_refused_without_consuming() {
        let mut h = FsVerityHasher::new();
        h.data_size = u64::MAX - 1;
        assert_eq!(
            h.update(b"ab"),
            Err(VerityError::TooLarge {
                data_size: u64::MAX - 1,
                more: 2
            })
        );
        assert_eq!(h.data_size(), u64::MAX - 1);
        h.update(b"a").unwrap();
        assert_eq!(h.data_size(), u64::MAX);
        let mut g = FsVerityHasher::new();
        g.data_size = u64::MAX - (u64::MAX % GROUP_SIZE as u64);
        assert!(matches!(
            g.update_group_hash(&[0; 32]),
            Err(VerityError::TooLarge { .. })
        ));
    }

    #[test]
    fn state_is_small() {
        // One running SHA-256 per level plus the data block: small enough for a kernel stack.
        assert!(core::mem::size_of::<FsVerityHasher>() <= 1200);
    }

    #[test]
    fn sink_and_io_write_feed_the_same_hasher() {
        use crate::sink::Sink;
        let data = content(Content::Pattern, 10_000);
        let mut h = FsVerityHasher::new();
        h.write_all(&data).unwrap();
        let mut w = FsVerityHasher::new();
        std::io::copy(&mut data.as_slice(), &mut w).unwrap();
        assert_eq!(h.finalize(), digest(&data));
        assert_eq!(w.finalize(), digest(&data));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Arbitrary chunking gives the one-shot digest, and both match the naive oracle.
        #[test]
        fn chunking_is_irrelevant(
            size in prop_oneof![0usize..10_000, 500_000usize..1_700_000],
            seed in any::<u8>(),
            cuts in proptest::collection::vec(0usize..20_000, 0..40),
        ) {
            let data: Vec<u8> = (0..size).map(|k| (k as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let one_shot = digest(&data);
            prop_assert_eq!(one_shot, naive_digest(&data));
            let mut h = FsVerityHasher::new();
            let mut rest = data.as_slice();
            for cut in cuts {
                let (head, tail) = rest.split_at(cut.min(rest.len()));
                h.update(head).unwrap();
                rest = tail;
            }
            h.update(rest).unwrap();
            prop_assert_eq!(h.finalize(), one_shot);
        }

        /// Whole blocks fed as bytes, as block hashes or (at group boundaries) as group
        /// hashes, in any mix, then a tail: always the naive digest.
        #[test]
        fn block_group_and_byte_feeding_mix(
            blocks in 0usize..300,
            tail in 0usize..BLOCK_SIZE,
            choices in proptest::collection::vec(0u8..3, 0..300),
        ) {
            let data: Vec<u8> = (0..blocks * BLOCK_SIZE + tail).map(|k| (k % 251) as u8).collect();
            let mut h = FsVerityHasher::new();
            let mut pos = 0;
            let mut choice = choices.iter().cycle().copied().chain(core::iter::repeat(0));
            while pos < blocks {
                let at = pos * BLOCK_SIZE;
                match choice.next() {
                    Some(2) if pos % HASHES_PER_BLOCK == 0 && pos + HASHES_PER_BLOCK <= blocks => {
                        let g = &data[at..at + GROUP_SIZE];
                        h.update_group_hash(&hash_group(g.try_into().unwrap())).unwrap();
                        pos += HASHES_PER_BLOCK;
                    }
                    Some(1) => {
                        let b = &data[at..at + BLOCK_SIZE];
                        h.update_block_hash(&hash_block(b.try_into().unwrap())).unwrap();
                        pos += 1;
                    }
                    _ => {
                        h.update(&data[at..at + BLOCK_SIZE]).unwrap();
                        pos += 1;
                    }
                }
            }
            h.update(&data[blocks * BLOCK_SIZE..]).unwrap();
            prop_assert_eq!(h.finalize(), naive_digest(&data));
        }

        /// Mixing group hashes with ordinary updates at group boundaries gives the same digest.
        #[test]
        fn groups_then_tail_is_irrelevant(groups in 0usize..4, tail in 0usize..GROUP_SIZE + 10, split in 0usize..4) {
            let data: Vec<u8> = (0..groups * GROUP_SIZE + tail).map(|k| (k % 253) as u8).collect();
            let mut h = FsVerityHasher::new();
            for (i, g) in data.chunks_exact(GROUP_SIZE).enumerate() {
                if i < split {
                    h.update(g).unwrap();
                } else {
                    h.update_group_hash(&hash_group(g.try_into().unwrap())).unwrap();
                }
            }
            h.update(&data[groups * GROUP_SIZE..]).unwrap();
            prop_assert_eq!(h.finalize(), naive_digest(&data));
        }
    }
}
