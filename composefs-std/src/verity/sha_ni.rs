//! SHA-256 of 4096-byte blocks, two at once, on the x86 SHA extensions (SHA-NI).
//!
//! fs-verity hashes every 4096-byte block of a file as its own SHA-256 message, so the
//! blocks of a file are independent. One SHA-256 stream is bound by the latency of
//! `sha256rnds2`: each pair of rounds waits for the one before. Two streams side by side
//! give the core a second chain of rounds to run while the first one waits. On the 5th
//! generation Xeon of BENCHMARKS.md this hashes about 20 % faster than the best
//! single-stream code (the `sha2` crate and OpenSSL, both on SHA-NI); three streams were
//! no faster and four slower (the SHA instructions only reach 16 vector registers and the
//! state spills). Where the CPU has AVX-512 as well, `sha_avx512` may be faster still;
//! `blocks` measures and chooses.
//!
//! The state of one stream lives in two vectors, as the instructions want it: `abef`
//! holds the working variables (F, E, B, A) in lanes 0 to 3 and `cdgh` holds (H, G, D, C).
//!
//! The module's one `unsafe` is entering the code compiled for the SHA extensions, after
//! checking at run time that the CPU has them. The intrinsics themselves are safe to call
//! inside that code, and no pointer is used.

#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_extract_epi32, _mm_set_epi32,
    _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi32,
};

use composefs_format::verity::{BLOCK_SIZE, DIGEST_SIZE};

use super::sha256::{H0, K, PADDING_BLOCK, SHA_BLOCK};

/// Streams hashed side by side.
const LANES: usize = 2;
/// One stream's working state: (F, E, B, A) and (H, G, D, C).
#[derive(Clone, Copy)]
struct State {
    abef: __m128i,
    cdgh: __m128i,
}

/// Whether this CPU has the instructions [`hash_blocks_into`] needs (checked once, then
/// cached by the standard library).
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

/// Sets `out[i]` to the SHA-256 of `blocks[i]`, for as many as both have. `false` (and
/// `out` untouched) when the CPU lacks the SHA extensions.
pub(crate) fn hash_blocks_into(blocks: &[[u8; BLOCK_SIZE]], out: &mut [[u8; DIGEST_SIZE]]) -> bool {
    if !available() {
        return false;
    }
    // SAFETY: `hash_blocks_into_sha_ni` requires the `sha`, `ssse3` and `sse4.1` target
    // features and nothing else; `available` has just checked that the CPU has all three.
    unsafe { hash_blocks_into_sha_ni(blocks, out) };
    true
}

/// [`hash_blocks_into`] on the SHA extensions: [`LANES`] blocks at a time, then any left
/// over one by one.
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn hash_blocks_into_sha_ni(blocks: &[[u8; BLOCK_SIZE]], out: &mut [[u8; DIGEST_SIZE]]) {
    let n = blocks.len().min(out.len());
    let (blocks, out) = (blocks.split_at(n).0, out.split_at_mut(n).0);
    let (block_tuples, block_rest) = blocks.as_chunks::<LANES>();
    let (hash_tuples, hash_rest) = out.as_chunks_mut::<LANES>();
    for (these, hashes) in block_tuples.iter().zip(hash_tuples) {
        *hashes = hash_blocks(these.each_ref());
    }
    for (block, hash) in block_rest.iter().zip(hash_rest) {
        [*hash] = hash_blocks([block]);
    }
}

/// The SHA-256 of `N` 4096-byte messages, interleaved.
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn hash_blocks<const N: usize>(blocks: [&[u8; BLOCK_SIZE]; N]) -> [[u8; DIGEST_SIZE]; N] {
    let mut states = [initial_state(); N];
    let chunks = blocks.map(|b| b.as_chunks::<SHA_BLOCK>().0);
    for k in 0..BLOCK_SIZE / SHA_BLOCK {
        compress(&mut states, chunks.map(|c| &c[k]));
    }
    compress(&mut states, [&PADDING_BLOCK; N]);
    states.map(|s| digest_of(s))
}

#[target_feature(enable = "sha,ssse3,sse4.1")]
fn initial_state() -> State {
    let [a, b, c, d, e, f, g, h] = H0.map(u32::cast_signed);
    State {
        abef: _mm_set_epi32(a, b, e, f),
        cdgh: _mm_set_epi32(c, d, g, h),
    }
}

/// The digest: the big-endian bytes of A to H.
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn digest_of(s: State) -> [u8; DIGEST_SIZE] {
    let [f, e, b, a] = lanes(s.abef);
    let [h, g, d, c] = lanes(s.cdgh);
    let mut out = [0u8; DIGEST_SIZE];
    for (o, w) in out
        .as_chunks_mut::<4>()
        .0
        .iter_mut()
        .zip([a, b, c, d, e, f, g, h])
    {
        *o = w.to_be_bytes();
    }
    out
}

/// The four 32-bit lanes of `v`, lane 0 first.
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn lanes(v: __m128i) -> [u32; 4] {
    [
        _mm_extract_epi32::<0>(v),
        _mm_extract_epi32::<1>(v),
        _mm_extract_epi32::<2>(v),
        _mm_extract_epi32::<3>(v),
    ]
    .map(i32::cast_unsigned)
}

/// The first sixteen message words W[0..16] of a block, big-endian as SHA-256 reads them,
/// four to a vector. (The compiler makes this one load and one byte shuffle per vector.)
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn message(block: &[u8; SHA_BLOCK]) -> [__m128i; 4] {
    let mut words = [0i32; 16];
    for (w, bytes) in words.iter_mut().zip(block.as_chunks::<4>().0) {
        *w = i32::from_be_bytes(*bytes);
    }
    let [w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15] = words;
    [
        _mm_set_epi32(w3, w2, w1, w0),
        _mm_set_epi32(w7, w6, w5, w4),
        _mm_set_epi32(w11, w10, w9, w8),
        _mm_set_epi32(w15, w14, w13, w12),
    ]
}

/// W + K for four rounds.
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn with_k(w: __m128i, k: &[u32; 4]) -> __m128i {
    let [k0, k1, k2, k3] = k.map(u32::cast_signed);
    _mm_add_epi32(w, _mm_set_epi32(k3, k2, k1, k0))
}

/// Four rounds on `s`, `wk` being W + K of those rounds.
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn rounds4(s: &mut State, wk: __m128i) {
    // `sha256rnds2` runs two rounds with the low two lanes of `wk` and returns the new
    // (F, E, B, A); the old (F, E, B, A) is the new (H, G, D, C).
    let abef = _mm_sha256rnds2_epu32(s.cdgh, s.abef, wk);
    let cdgh = s.abef;
    s.abef = _mm_sha256rnds2_epu32(cdgh, abef, _mm_shuffle_epi32::<0x0e>(wk));
    s.cdgh = abef;
}

/// The next four message words W[t..t+4] from the sixteen before them, `w` holding
/// W[t-16..t-12], W[t-12..t-8], W[t-8..t-4] and W[t-4..t].
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn schedule(w: [__m128i; 4]) -> __m128i {
    let [w0, w1, w2, w3] = w;
    // W[t-16] + s0(W[t-15]), plus W[t-7]; then s1(W[t-2]) is added lane by lane.
    let partial = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8::<4>(w3, w2));
    _mm_sha256msg2_epu32(partial, w3)
}

/// One 64-byte block of each of `N` streams, round by round.
#[target_feature(enable = "sha,ssse3,sse4.1")]
fn compress<const N: usize>(states: &mut [State; N], blocks: [&[u8; SHA_BLOCK]; N]) {
    let start = *states;
    let mut words = blocks.map(|b| message(b));
    let (first, rest) = K.as_chunks::<4>().0.split_at(4);
    for (i, k) in first.iter().enumerate() {
        for (s, w) in states.iter_mut().zip(&words) {
            rounds4(s, with_k(w[i], k));
        }
    }
    for k in rest {
        for (s, w) in states.iter_mut().zip(&mut words) {
            let next = schedule(*w);
            let [_, w1, w2, w3] = *w;
            *w = [w1, w2, w3, next];
            rounds4(s, with_k(next, k));
        }
    }
    for (s, s0) in states.iter_mut().zip(start) {
        s.abef = _mm_add_epi32(s.abef, s0.abef);
        s.cdgh = _mm_add_epi32(s.cdgh, s0.cdgh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Pairs, the odd block left over, both lanes: plain SHA-256 of each block.
    #[test]
    fn blocks_hash_like_sha2() {
        if !available() {
            eprintln!("SKIP: this CPU has no SHA extensions");
            return;
        }
        let data = crate::verity::blocks::tests::pattern(7 * BLOCK_SIZE, 3);
        let blocks = data.as_chunks::<BLOCK_SIZE>().0;
        let mut out = vec![[0u8; DIGEST_SIZE]; blocks.len()];
        assert!(hash_blocks_into(blocks, &mut out));
        for (b, o) in blocks.iter().zip(&out) {
            assert_eq!(*o, <[u8; DIGEST_SIZE]>::from(Sha256::digest(b)));
        }
    }
}
