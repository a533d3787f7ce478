//! The only place where offsets become slices or structs: checked `u64` arithmetic and
//! bounds-checked views over the image bytes. Every other reader module goes through here.

use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use crate::error::ErrorKind;
use crate::ondisk::EROFS_BLKSIZ;

/// `len` bytes at `offset`, or `OutOfBounds`.
pub(crate) fn slice(data: &[u8], offset: u64, len: u64) -> Result<&[u8], ErrorKind> {
    let oob = ErrorKind::OutOfBounds {
        offset,
        len,
        image_len: data.len() as u64,
    };
    let end = offset.checked_add(len).ok_or(oob)?;
    let start = usize::try_from(offset).map_err(|_| oob)?;
    let end = usize::try_from(end).map_err(|_| oob)?;
    data.get(start..end).ok_or(oob)
}

/// A `T` viewed in place at `offset`.
pub(crate) fn view<T>(data: &[u8], offset: u64) -> Result<&T, ErrorKind>
where
    T: FromBytes + KnownLayout + Immutable + Unaligned,
{
    let bytes = slice(data, offset, core::mem::size_of::<T>() as u64)?;
    T::ref_from_bytes(bytes).map_err(|_| ErrorKind::Overflow)
}

/// `a + b`, or `Overflow`.
pub(crate) fn add(a: u64, b: u64) -> Result<u64, ErrorKind> {
    a.checked_add(b).ok_or(ErrorKind::Overflow)
}

/// `a * b`, or `Overflow`.
pub(crate) fn mul(a: u64, b: u64) -> Result<u64, ErrorKind> {
    a.checked_mul(b).ok_or(ErrorKind::Overflow)
}

/// Byte offset of block `blk` (cannot overflow: a `u32` block times 4096 fits in 44 bits).
pub(crate) fn blk_to_off(blk: u32) -> u64 {
    u64::from(blk).wrapping_mul(EROFS_BLKSIZ)
}

/// Offset within its block.
pub(crate) fn blkoff(offset: u64) -> u64 {
    offset % EROFS_BLKSIZ
}

/// `ceil(a / 4096)`.
pub(crate) fn blocks_for(len: u64) -> u64 {
    len.div_ceil(EROFS_BLKSIZ)
}

/// A `u64` length as `usize` (saturating; only used for lengths already bounded by a slice).
pub(crate) fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Little-endian `u32` at `offset`.
pub(crate) fn le32(data: &[u8], offset: u64) -> Result<u32, ErrorKind> {
    match *slice(data, offset, 4)? {
        [a, b, c, d] => Ok(u32::from_le_bytes([a, b, c, d])),
        _ => Err(ErrorKind::Overflow),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;
    use crate::ondisk::Le16;

    #[test]
    fn reads_are_bounded_and_overflow_checked() {
        let data = [1u8, 2, 3, 4, 5];
        assert_eq!(slice(&data, 1, 3).unwrap(), &[2, 3, 4]);
        assert_eq!(slice(&data, 5, 0).unwrap(), &[] as &[u8]);
        assert!(matches!(
            slice(&data, 3, 3),
            Err(ErrorKind::OutOfBounds {
                offset: 3,
                len: 3,
                ..
            })
        ));
        assert!(slice(&data, u64::MAX, 2).is_err());
        assert_eq!(view::<Le16>(&data, 3).unwrap().get(), 0x0504);
        assert!(view::<Le16>(&data, 4).is_err());
        assert_eq!(le32(&data, 0).unwrap(), 0x0403_0201);
        assert_eq!(add(u64::MAX, 1), Err(ErrorKind::Overflow));
        assert_eq!(mul(u64::MAX, 2), Err(ErrorKind::Overflow));
        assert_eq!(blk_to_off(u32::MAX), 0xFFFF_FFFF_u64 * 4096);
        assert_eq!(blocks_for(4097), 2);
        assert_eq!(blkoff(4097), 1);
    }
}
