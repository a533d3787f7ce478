//! SHA-256 of sixteen 4096-byte blocks at once on AVX-512.
//!
//! Every 4096-byte block of an fs-verity input is its own SHA-256 message, so sixteen of
//! them can be hashed in the sixteen 32-bit lanes of the 512-bit vectors: lane `i` of the
//! eight state vectors is the state of block `i`, and lane `i` of the message words comes
//! from block `i`. The rounds are the plain FIPS 180-4 ones, with the three-input logic
//! instruction computing Ch, Maj and the three-way XORs of the Σ and σ functions.
//!
//! The module's `unsafe` is entering the code compiled for AVX-512 after checking at run
//! time that the CPU has it, and two transmutes between 64-byte arrays and vectors (plain
//! data of the same size, every bit pattern valid).

#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_ror_epi32, _mm512_set1_epi32, _mm512_set_epi64,
    _mm512_shuffle_epi8, _mm512_shuffle_i32x4, _mm512_srli_epi32, _mm512_ternarylogic_epi32,
    _mm512_unpackhi_epi32, _mm512_unpackhi_epi64, _mm512_unpacklo_epi32, _mm512_unpacklo_epi64,
};

use composefs_format::verity::{BLOCK_SIZE, DIGEST_SIZE};

use super::sha256::{H0, K, PADDING_BLOCK, SHA_BLOCK};

/// Blocks hashed side by side: one per 32-bit lane.
pub(crate) const LANES: usize = 16;

/// W + K of the last message block of every 4096-byte message (the `0x80` marker, zeros
/// and the length in bits, 32768), worked out at compile time: this block is the same for
/// every lane.
const PADDING_WK: [u32; 64] = {
    let b = PADDING_BLOCK;
    let mut w = [0u32; 64];
    let mut t = 0;
    while t < 16 {
        w[t] = u32::from_be_bytes([b[4 * t], b[4 * t + 1], b[4 * t + 2], b[4 * t + 3]]);
        t += 1;
    }
    while t < 64 {
        let x = w[t - 15];
        let y = w[t - 2];
        let s0 = x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3);
        let s1 = y.rotate_right(17) ^ y.rotate_right(19) ^ (y >> 10);
        w[t] = w[t - 16]
            .wrapping_add(s0)
            .wrapping_add(w[t - 7])
            .wrapping_add(s1);
        t += 1;
    }
    let mut t = 0;
    while t < 64 {
        w[t] = w[t].wrapping_add(K[t]);
        t += 1;
    }
    w
};

/// Whether this CPU has the instructions [`hash_blocks_into`] needs (checked once, then
/// cached by the standard library).
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

/// Sets `out[i]` to the SHA-256 of `blocks[i]` for the longest prefix of both that is a
/// multiple of [`LANES`], and returns its length: 0 when the CPU lacks AVX-512.
pub(crate) fn hash_blocks_into(
    blocks: &[[u8; BLOCK_SIZE]],
    out: &mut [[u8; DIGEST_SIZE]],
) -> usize {
    if !available() {
        return 0;
    }
    // SAFETY: `hash_blocks_into_avx512` requires the `avx512f` and `avx512bw` target
    // features and nothing else; `available` has just checked that the CPU has both.
    unsafe { hash_blocks_into_avx512(blocks, out) }
}

#[target_feature(enable = "avx512f,avx512bw")]
fn hash_blocks_into_avx512(blocks: &[[u8; BLOCK_SIZE]], out: &mut [[u8; DIGEST_SIZE]]) -> usize {
    let (block_sets, _) = blocks.as_chunks::<LANES>();
    let (hash_sets, _) = out.as_chunks_mut::<LANES>();
    let mut done = 0;
    for (set, hashes) in block_sets.iter().zip(hash_sets) {
        *hashes = hash_sixteen(set);
        done += LANES;
    }
    done
}

/// The SHA-256 of each of sixteen 4096-byte messages.
#[target_feature(enable = "avx512f,avx512bw")]
fn hash_sixteen(blocks: &[[u8; BLOCK_SIZE]; LANES]) -> [[u8; DIGEST_SIZE]; LANES] {
    let mut state = H0.map(|h| _mm512_set1_epi32(h.cast_signed()));
    let chunks = blocks.each_ref().map(|b| b.as_chunks::<SHA_BLOCK>().0);
    for k in 0..BLOCK_SIZE / SHA_BLOCK {
        let rows = chunks.map(|c| big_endian(from_bytes(&c[k])));
        compress(&mut state, transpose(rows));
    }
    compress_padding(&mut state);
    let words = state.map(to_lanes);
    let mut out = [[0u8; DIGEST_SIZE]; LANES];
    for (lane, digest) in out.iter_mut().enumerate() {
        for (bytes, word) in digest.as_chunks_mut::<4>().0.iter_mut().zip(&words) {
            *bytes = word[lane].to_be_bytes();
        }
    }
    out
}

/// Runs `$body` sixteen times with `$i` bound to 0, 1, ..., 15, written out so that every
/// index into the message array is a constant and the words stay in registers.
macro_rules! unroll16 {
    (|$i:ident| $body:expr) => {
        unroll16!(@ $i, $body, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    (@ $i:ident, $body:expr, $($n:literal)*) => {
        $( { let $i: usize = $n; $body; } )*
    };
}

/// One 64-byte block of each lane, `w` holding its sixteen message words (word `t` of
/// every lane in `w[t]`).
#[target_feature(enable = "avx512f,avx512bw")]
fn compress(state: &mut [__m512i; 8], mut w: [__m512i; 16]) {
    let mut s = *state;
    for (j, k) in K.as_chunks::<16>().0.iter().enumerate() {
        if j > 0 {
            // W[t] for the next sixteen rounds, in place: w[i] held W[t - 16], and the
            // words W[t - 15], W[t - 7] and W[t - 2] are already the new ones where they
            // fall in this round of sixteen.
            unroll16!(|i| {
                w[i] = add4(
                    w[i],
                    small_sigma0(w[(i + 1) % 16]),
                    w[(i + 9) % 16],
                    small_sigma1(w[(i + 14) % 16]),
                )
            });
        }
        unroll16!(|i| round(
            &mut s,
            _mm512_add_epi32(w[i], _mm512_set1_epi32(k[i].cast_signed()))
        ));
    }
    for (x, y) in state.iter_mut().zip(s) {
        *x = _mm512_add_epi32(*x, y);
    }
}

/// The padding block, the same for every lane: its W + K are constants.
#[target_feature(enable = "avx512f,avx512bw")]
fn compress_padding(state: &mut [__m512i; 8]) {
    let mut s = *state;
    for wk in PADDING_WK {
        round(&mut s, _mm512_set1_epi32(wk.cast_signed()));
    }
    for (x, y) in state.iter_mut().zip(s) {
        *x = _mm512_add_epi32(*x, y);
    }
}

/// One SHA-256 round on every lane, `wk` being W + K of the round.
#[target_feature(enable = "avx512f,avx512bw")]
fn round(s: &mut [__m512i; 8], wk: __m512i) {
    let [a, b, c, d, e, f, g, h] = *s;
    let big_sigma1 = xor3(
        _mm512_ror_epi32::<6>(e),
        _mm512_ror_epi32::<11>(e),
        _mm512_ror_epi32::<25>(e),
    );
    // Ch(e, f, g) = e ? f : g, bit by bit.
    let ch = _mm512_ternarylogic_epi32::<0xca>(e, f, g);
    let t1 = add4(h, big_sigma1, ch, wk);
    let big_sigma0 = xor3(
        _mm512_ror_epi32::<2>(a),
        _mm512_ror_epi32::<13>(a),
        _mm512_ror_epi32::<22>(a),
    );
    // Maj(a, b, c): the majority of each bit.
    let maj = _mm512_ternarylogic_epi32::<0xe8>(a, b, c);
    let t2 = _mm512_add_epi32(big_sigma0, maj);
    *s = [
        _mm512_add_epi32(t1, t2),
        a,
        b,
        c,
        _mm512_add_epi32(d, t1),
        e,
        f,
        g,
    ];
}

#[target_feature(enable = "avx512f,avx512bw")]
fn small_sigma0(x: __m512i) -> __m512i {
    xor3(
        _mm512_ror_epi32::<7>(x),
        _mm512_ror_epi32::<18>(x),
        _mm512_srli_epi32::<3>(x),
    )
}

#[target_feature(enable = "avx512f,avx512bw")]
fn small_sigma1(x: __m512i) -> __m512i {
    xor3(
        _mm512_ror_epi32::<17>(x),
        _mm512_ror_epi32::<19>(x),
        _mm512_srli_epi32::<10>(x),
    )
}

#[target_feature(enable = "avx512f,avx512bw")]
fn xor3(x: __m512i, y: __m512i, z: __m512i) -> __m512i {
    _mm512_ternarylogic_epi32::<0x96>(x, y, z)
}

#[target_feature(enable = "avx512f,avx512bw")]
fn add4(w: __m512i, x: __m512i, y: __m512i, z: __m512i) -> __m512i {
    _mm512_add_epi32(_mm512_add_epi32(w, x), _mm512_add_epi32(y, z))
}

/// Reverses the bytes of every 32-bit lane (SHA-256 reads big-endian words).
#[target_feature(enable = "avx512f,avx512bw")]
fn big_endian(v: __m512i) -> __m512i {
    let per_lane = 0x0c0d_0e0f_0809_0a0b_u64.cast_signed();
    let low = 0x0405_0607_0001_0203_u64.cast_signed();
    let mask = _mm512_set_epi64(per_lane, low, per_lane, low, per_lane, low, per_lane, low);
    _mm512_shuffle_epi8(v, mask)
}

/// Turns sixteen rows of sixteen words (row `i`: the words of lane `i`) into sixteen
/// columns (column `t`: word `t` of every lane).
#[target_feature(enable = "avx512f,avx512bw")]
fn transpose(r: [__m512i; 16]) -> [__m512i; 16] {
    // Within each 128-bit quarter: interleave the words of row pairs, then the word pairs
    // of pair pairs. u[4g + j], quarter q, then holds word 4q + j of rows 4g to 4g + 3.
    let mut u = [r[0]; 16];
    for g in 0..4 {
        let [r0, r1, r2, r3] = [r[4 * g], r[4 * g + 1], r[4 * g + 2], r[4 * g + 3]];
        let t0 = _mm512_unpacklo_epi32(r0, r1);
        let t1 = _mm512_unpackhi_epi32(r0, r1);
        let t2 = _mm512_unpacklo_epi32(r2, r3);
        let t3 = _mm512_unpackhi_epi32(r2, r3);
        u[4 * g] = _mm512_unpacklo_epi64(t0, t2);
        u[4 * g + 1] = _mm512_unpackhi_epi64(t0, t2);
        u[4 * g + 2] = _mm512_unpacklo_epi64(t1, t3);
        u[4 * g + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
    // Then gather quarter q of u[j], u[4 + j], u[8 + j], u[12 + j] into column 4q + j.
    let mut out = [r[0]; 16];
    for j in 0..4 {
        let lo_a = _mm512_shuffle_i32x4::<0x44>(u[j], u[4 + j]);
        let hi_a = _mm512_shuffle_i32x4::<0xee>(u[j], u[4 + j]);
        let lo_b = _mm512_shuffle_i32x4::<0x44>(u[8 + j], u[12 + j]);
        let hi_b = _mm512_shuffle_i32x4::<0xee>(u[8 + j], u[12 + j]);
        out[j] = _mm512_shuffle_i32x4::<0x88>(lo_a, lo_b);
        out[4 + j] = _mm512_shuffle_i32x4::<0xdd>(lo_a, lo_b);
        out[8 + j] = _mm512_shuffle_i32x4::<0x88>(hi_a, hi_b);
        out[12 + j] = _mm512_shuffle_i32x4::<0xdd>(hi_a, hi_b);
    }
    out
}

fn from_bytes(bytes: &[u8; SHA_BLOCK]) -> __m512i {
    // SAFETY: `[u8; 64]` and `__m512i` are both 64 bytes of plain data, and every bit
    // pattern is a valid value of either.
    unsafe { core::mem::transmute::<[u8; SHA_BLOCK], __m512i>(*bytes) }
}

fn to_lanes(v: __m512i) -> [u32; LANES] {
    // SAFETY: as in `from_bytes`.
    unsafe { core::mem::transmute::<__m512i, [u32; LANES]>(v) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn sixteen_blocks_hash_like_sha2() {
        if !available() {
            eprintln!("SKIP: this CPU has no AVX-512");
            return;
        }
        let data = crate::verity::blocks::tests::pattern(17 * BLOCK_SIZE, 5);
        let blocks = data.as_chunks::<BLOCK_SIZE>().0;
        let mut out = vec![[0u8; DIGEST_SIZE]; blocks.len()];
        assert_eq!(hash_blocks_into(blocks, &mut out), 16);
        for (b, o) in blocks.iter().zip(&out).take(16) {
            assert_eq!(*o, <[u8; DIGEST_SIZE]>::from(Sha256::digest(b)));
        }
        assert_eq!(
            out[16], [0; DIGEST_SIZE],
            "the 17th block is left to the caller"
        );
    }
}
