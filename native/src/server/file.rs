//! The file of an `http.response.pathsend` message: opened on the I/O
//! thread and streamed with a bounded buffer (or sendfile).

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;

/// Bytes read from the file per chunk when it is not sent with sendfile:
/// the most a response holds in memory at once.
pub(crate) const FILE_CHUNK: usize = 64 * 1024;

/// An open regular file and its length.
pub(crate) struct BodyFile {
    pub(crate) file: tokio::fs::File,
    pub(crate) len: u64,
}

impl BodyFile {
    /// Opens `path`, which must be a regular file.
    pub(crate) async fn open(path: &str) -> io::Result<Self> {
        let file = tokio::fs::File::open(path).await?;
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(Self {
            file,
            len: meta.len(),
        })
    }

    /// The next chunk, or None at the end of the file.
    pub(crate) async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        let mut buf = BytesMut::with_capacity(FILE_CHUNK);
        let n = self.file.read_buf(&mut buf).await?;
        Ok((n > 0).then(|| buf.freeze()))
    }
}

/// Adds `content-length` to a response head that has no framing of its own.
pub(crate) fn add_content_length(headers: &mut Vec<(Bytes, Bytes)>, len: u64) {
    let framed = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case(b"content-length") || n.eq_ignore_ascii_case(b"transfer-encoding")
    });
    if !framed {
        headers.push((
            Bytes::from_static(b"content-length"),
            Bytes::from(len.to_string()),
        ));
    }
}
