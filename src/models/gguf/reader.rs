//! A bounds-checked reader over the header bytes.

use super::*;

/// Reads the header sequentially while tracking the position, so that every
/// length can be checked against the bytes left in the file *before* anything
/// is allocated or skipped.
pub(super) struct HeaderReader<R> {
    pub(super) inner: R,
    pub(super) pos: u64,
    pub(super) file_size: u64,
}

impl<R: Read + Seek> HeaderReader<R> {
    pub(super) fn new(inner: R, file_size: u64) -> Self {
        HeaderReader {
            inner,
            pos: 0,
            file_size,
        }
    }

    pub(super) fn remaining(&self) -> u64 {
        self.file_size.saturating_sub(self.pos)
    }

    pub(super) fn truncated(&self, what: &str) -> GgufError {
        GgufError::Truncated {
            what: what.to_string(),
            offset: self.pos,
        }
    }

    pub(super) fn malformed(&self, offset: u64, what: String) -> GgufError {
        GgufError::Malformed { what, offset }
    }

    /// Fails with `Truncated` unless `len` more bytes exist in the file.
    pub(super) fn require(&self, len: u64, what: &str) -> Result<(), GgufError> {
        if len > self.remaining() {
            return Err(self.truncated(what));
        }
        Ok(())
    }

    pub(super) fn read_error(&self, err: io::Error, what: &str) -> GgufError {
        // Sizes are checked up front, so EOF here means the file shrank
        // while we were reading it; that is still a truncated file.
        if err.kind() == io::ErrorKind::UnexpectedEof {
            self.truncated(what)
        } else {
            GgufError::Io(err)
        }
    }

    pub(super) fn read_into(&mut self, buf: &mut [u8], what: &str) -> Result<(), GgufError> {
        let len = buf.len() as u64;
        self.require(len, what)?;
        if let Err(err) = self.inner.read_exact(buf) {
            return Err(self.read_error(err, what));
        }
        self.pos += len;
        Ok(())
    }

    pub(super) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.read_into(&mut buf, what)?;
        Ok(buf)
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Moves past `len` bytes without reading them (a cheap in-buffer move
    /// for the many short strings of a vocabulary, a real seek otherwise).
    pub(super) fn skip(&mut self, len: u64, what: &str) -> Result<(), GgufError> {
        self.require(len, what)?;
        let delta = i64::try_from(len).map_err(|_| self.truncated(what))?;
        self.inner.seek_relative(delta).map_err(GgufError::Io)?;
        self.pos += len;
        Ok(())
    }

    /// Reads the length prefix of a string and checks that the string fits
    /// both in `limit` and in the rest of the file.
    pub(super) fn string_len(&mut self, what: &str, limit: u64) -> Result<u64, GgufError> {
        let len = self.u64(what)?;
        if len > limit {
            return Err(GgufError::Implausible {
                what: format!(
                    "the header claims a {len}-byte string for {what}, \
                     more than the {limit} bytes allowed there"
                ),
            });
        }
        self.require(len, what)?;
        Ok(len)
    }

    /// Reads `len` bytes that `string_len` has already bounded.
    pub(super) fn bytes(&mut self, len: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        let len = usize::try_from(len).map_err(|_| self.truncated(what))?;
        let mut buf = vec![0u8; len];
        self.read_into(&mut buf, what)?;
        Ok(buf)
    }

    pub(super) fn skip_string(&mut self, what: &str) -> Result<(), GgufError> {
        let len = self.string_len(what, MAX_STRING_LEN)?;
        self.skip(len, what)
    }
}
