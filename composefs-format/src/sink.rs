//! Where the writer and the printers put their bytes: a minimal, `no_std` output trait.

/// An append-only byte sink.
pub trait Sink {
    /// The error a write can fail with.
    type Error;

    /// Appends `bytes`.
    ///
    /// # Errors
    /// Whatever the underlying output reports.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Appends `count` zero bytes.
    ///
    /// # Errors
    /// Whatever the underlying output reports.
    fn write_zeros(&mut self, mut count: u64) -> Result<(), Self::Error> {
        const ZEROS: [u8; 4096] = [0; 4096];
        while count > 0 {
            let step = count.min(4096);
            // step <= 4096, so both conversions are exact.
            let n = usize::try_from(step).unwrap_or(4096);
            self.write_all(ZEROS.get(..n).unwrap_or(&ZEROS))?;
            count = count.saturating_sub(step);
        }
        Ok(())
    }
}

#[cfg(feature = "alloc")]
impl Sink for alloc::vec::Vec<u8> {
    type Error = core::convert::Infallible;

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    type Error = S::Error;

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        (**self).write_all(bytes)
    }

    fn write_zeros(&mut self, count: u64) -> Result<(), Self::Error> {
        (**self).write_zeros(count)
    }
}

/// Adapts any [`std::io::Write`] into a [`Sink`]. Wrap it in a `BufWriter` when the writer
/// is unbuffered: the image writer and the printers issue many small writes.
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct IoSink<W>(pub W);

#[cfg(feature = "std")]
impl<W: std::io::Write> Sink for IoSink<W> {
    type Error = std::io::Error;

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.write_all(bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::Sink;
    use alloc::vec::Vec;

    #[test]
    fn write_zeros_appends_exactly_count_zeros() {
        let mut v: Vec<u8> = Vec::new();
        v.write_all(b"ab").unwrap();
        v.write_zeros(10_000).unwrap();
        assert_eq!(v.len(), 10_002);
        assert!(v[2..].iter().all(|&b| b == 0));
    }
}
