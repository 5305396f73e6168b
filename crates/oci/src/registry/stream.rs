//! Blobs as blocking streams: a download read as it arrives (resumed by `Range` after a dropped
//! connection), and an upload fed from any reader, both through the registry's runtime.

use super::{registry_error, Registry, ATTEMPTS};
use crate::error::Result;
use futures_util::stream::{BoxStream, StreamExt};
use oci_client::client::BlobResponse;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// Bytes per upload piece handed to the client (it sends them as chunked `PATCH`es).
const UPLOAD_PIECE: usize = 4 << 20;

/// A blob of a registry, read as it downloads. It does not check the digest itself: callers
/// wrap it in a [`crate::layout::VerifiedReader`], which does over the whole stream.
pub struct RemoteBlob {
    registry: Arc<Registry>,
    digest: String,
    stream: Option<BoxStream<'static, std::io::Result<bytes::Bytes>>>,
    pending: bytes::Bytes,
    read: u64,
    resumes: u32,
}

impl RemoteBlob {
    /// Starts reading the blob `digest` of `registry`'s repository.
    pub fn open(registry: Arc<Registry>, digest: &str) -> Result<Self> {
        let mut blob = RemoteBlob {
            registry,
            digest: digest.to_owned(),
            stream: None,
            pending: bytes::Bytes::new(),
            read: 0,
            resumes: 0,
        };
        blob.stream = Some(blob.request()?);
        Ok(blob)
    }

    /// A request for the blob from where reading stopped.
    fn request(&self) -> Result<BoxStream<'static, std::io::Result<bytes::Bytes>>> {
        let r = &self.registry;
        let what = format!("blob {}", self.digest);
        let response = r.retrying(&what, || {
            r.client
                .pull_blob_stream_partial(&r.image, self.digest.as_str(), self.read, None)
        })?;
        match response {
            BlobResponse::Full(s) if self.read == 0 => Ok(s.stream),
            BlobResponse::Partial(s) => Ok(s.stream),
            BlobResponse::Full(_) => Err(registry_error(
                &r.image,
                &what,
                "the registry cannot resume a download (no Range support)",
            )),
        }
    }

    /// Asks again from the current offset after the connection dropped.
    fn resume(&mut self, cause: std::io::Error) -> std::io::Result<()> {
        self.resumes += 1;
        if self.resumes >= ATTEMPTS {
            return Err(cause);
        }
        std::thread::sleep(Duration::from_millis(250 << self.resumes));
        self.stream = Some(self.request().map_err(std::io::Error::other)?);
        Ok(())
    }
}

impl Read for RemoteBlob {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.is_empty() {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(0);
            };
            match self.registry.rt.block_on(stream.next()) {
                Some(Ok(bytes)) => self.pending = bytes,
                Some(Err(e)) => self.resume(e)?,
                None => {
                    self.stream = None;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        self.read += n as u64;
        Ok(n)
    }
}

impl Registry {
    /// Uploads `size` bytes read from `source` as the blob `digest` (the registry checks the
    /// digest when the upload is closed). The reader runs on its own thread, so a blocking
    /// source (a file, another registry's download) never holds up the runtime.
    pub fn push_blob(
        &self,
        mut source: impl Read + Send + 'static,
        digest: &str,
        size: u64,
    ) -> Result<()> {
        let (tx, rx) = tokio::sync::mpsc::channel::<oci_client::errors::Result<bytes::Bytes>>(4);
        let reader = std::thread::spawn(move || {
            let mut left = size;
            while left > 0 {
                let n = usize::try_from(left).map_or(UPLOAD_PIECE, |l| l.min(UPLOAD_PIECE));
                let mut piece = vec![0u8; n];
                let item = source
                    .read_exact(&mut piece)
                    .map(|()| bytes::Bytes::from(piece))
                    .map_err(oci_client::errors::OciDistributionError::IoError);
                let failed = item.is_err();
                if tx.blocking_send(item).is_err() || failed {
                    return;
                }
                left -= n as u64;
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let result =
            self.rt.block_on(
                self.client
                    .push_blob_stream(&self.image, stream, digest, Some(size)),
            );
        let _ = reader.join();
        result
            .map(|_| ())
            .map_err(|e| registry_error(&self.image, &format!("uploading blob {digest}"), e))
    }
}
