//! The file of an `http.response.pathsend` message: opened on the I/O
//! thread and streamed with a bounded buffer (or sendfile).

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;

/// Bytes read from the file per chunk when it is not sent with sendfile:
/// the most a response holds in memory at once.
pub(super) const FILE_CHUNK: usize = 64 * 1024;

/// An open regular file, and the part of it to send: `len` bytes from
/// `offset` (the whole file unless [`BodyFile::range`] narrowed it).
pub struct BodyFile {
    pub file: tokio::fs::File,
    pub offset: u64,
    pub len: u64,
    /// Bytes not yet returned by [`BodyFile::next_chunk`].
    left: u64,
}

impl BodyFile {
    /// Opens `path`, which must be a regular file.
    pub async fn open(path: &str) -> io::Result<Self> {
        let file = tokio::fs::File::open(path).await?;
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(Self::from_file(file, meta.len()))
    }

    /// An already open file of `len` bytes, whole.
    pub fn from_file(file: tokio::fs::File, len: u64) -> Self {
        Self {
            file,
            offset: 0,
            len,
            left: len,
        }
    }

    /// Narrows it to `len` bytes from `offset` (within the file), and
    /// positions the file there.
    pub async fn range(mut self, offset: u64, len: u64) -> io::Result<Self> {
        use tokio::io::AsyncSeekExt;
        self.file.seek(io::SeekFrom::Start(offset)).await?;
        self.offset = offset;
        self.len = len;
        self.left = len;
        Ok(self)
    }

    /// The next chunk, or None at the end of the part to send (or of the
    /// file, if it shrank).
    pub async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.left == 0 {
            return Ok(None);
        }
        let want = FILE_CHUNK.min(usize::try_from(self.left).unwrap_or(FILE_CHUNK));
        let mut buf = BytesMut::with_capacity(want);
        let n = (&mut self.file)
            .take(want as u64)
            .read_buf(&mut buf)
            .await?;
        self.left -= n as u64;
        Ok((n > 0).then(|| buf.freeze()))
    }
}

/// Adds `content-length` to a response head that has no framing of its own.
pub(super) fn add_content_length(headers: &mut Vec<(Bytes, Bytes)>, len: u64) {
    let framed = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case(b"content-length") || n.eq_ignore_ascii_case(b"transfer-encoding")
    });
    if !framed {
        headers.push((
            Bytes::from_static(b"content-length"),
            cormorant_core::http::decimal_value(len),
        ));
    }
}

/// Opens the file of a pathsend message; a failure is logged on the app's
/// side and is None (the response becomes a 500).
pub(super) async fn open_logged(ctx: &super::ServerCtx, path: &str) -> Option<BodyFile> {
    match BodyFile::open(path).await {
        Ok(f) => Some(f),
        Err(e) => {
            ctx.log(crate::config::Level::Error, || {
                format!("cannot send {path:?} (http.response.pathsend): {e}")
            });
            None
        }
    }
}
