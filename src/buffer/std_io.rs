//! `std::io::Write` for [`Buffer`](super::Buffer): writes append.

use super::Buffer;

impl std::io::Write for Buffer<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
