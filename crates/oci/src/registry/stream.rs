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

/// Bytes a download gathers before handing them to the reader.
const DOWNLOAD_PIECE: usize = 1 << 20;

/// Pieces a download may hold ahead of its reader.
const DOWNLOAD_AHEAD: usize = 4;

/// A download running on the registry's runtime ahead of its reader.
type Pump = tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>;

/// A blob of a registry, read as it downloads. The download runs ahead of the reader by a few
/// pieces, so the network and the conversion overlap. It does not check the digest itself:
/// callers wrap it in a [`crate::layout::VerifiedReader`], which does over the whole stream.
pub struct RemoteBlob {
    registry: Arc<Registry>,
    digest: String,
    stream: Option<Pump>,
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

    /// A request for the blob from where reading stopped, downloading ahead.
    fn request(&self) -> Result<Pump> {
        let stream = self.response()?;
        let (tx, rx) = tokio::sync::mpsc::channel(DOWNLOAD_AHEAD);
        self.registry.rt.spawn(pump(stream, tx));
        Ok(rx)
    }

    /// The response stream of a request from where reading stopped.
    fn response(&self) -> Result<BoxStream<'static, std::io::Result<bytes::Bytes>>> {
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
            match stream.blocking_recv() {
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

/// Moves a response into `tx` in pieces of up to [`DOWNLOAD_PIECE`] bytes, until it ends,
/// fails, or the reader goes away.
async fn pump(
    mut stream: BoxStream<'static, std::io::Result<bytes::Bytes>>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) {
    let mut piece = bytes::BytesMut::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) if piece.is_empty() && b.len() >= DOWNLOAD_PIECE => {
                if tx.send(Ok(b)).await.is_err() {
                    return;
                }
            }
            Ok(b) => {
                piece.extend_from_slice(&b);
                if piece.len() >= DOWNLOAD_PIECE
                    && tx.send(Ok(piece.split().freeze())).await.is_err()
                {
                    return;
                }
            }
            Err(e) => {
                if !piece.is_empty() && tx.send(Ok(piece.split().freeze())).await.is_err() {
                    return;
                }
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
    if !piece.is_empty() {
        let _ = tx.send(Ok(piece.freeze())).await;
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

/// The upload task of a [`StreamedUpload`].
type UploadTask = tokio::task::JoinHandle<
    oci_client::errors::Result<oci_client::client::PushBlobStreamChunkedResponse>,
>;

/// A blob uploaded while it is written: each piece goes to the registry as a chunk of one
/// upload session as soon as it is full; [`StreamedUpload::finish`] closes the session with
/// the digest. At most a few pieces wait in memory: a slow registry slows the writer down.
pub struct StreamedUpload {
    registry: Arc<Registry>,
    tx: Option<tokio::sync::mpsc::Sender<oci_client::errors::Result<bytes::Bytes>>>,
    task: Option<UploadTask>,
    piece: Vec<u8>,
}

impl Registry {
    /// Starts uploading a blob whose bytes are about to be written.
    pub fn stream_upload(self: &Arc<Self>) -> StreamedUpload {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let (client, image) = (self.client.clone(), self.image.clone());
        let task = self
            .rt
            .spawn(async move { client.push_blob_stream_chunked(&image, stream).await });
        StreamedUpload {
            registry: self.clone(),
            tx: Some(tx),
            task: Some(task),
            piece: Vec::with_capacity(UPLOAD_PIECE),
        }
    }
}

impl StreamedUpload {
    fn send_piece(&mut self) -> std::io::Result<()> {
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(UPLOAD_PIECE));
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.blocking_send(Ok(bytes::Bytes::from(piece))));
        if let Some(Ok(())) = sent {
            return Ok(());
        }
        // The upload task stopped: say why.
        let reason = match self.task.take().map(|t| self.registry.rt.block_on(t)) {
            Some(Ok(Err(e))) => e.to_string(),
            Some(Ok(Ok(_))) => "the upload ended early".to_owned(),
            _ => "the upload task failed".to_owned(),
        };
        Err(std::io::Error::other(format!(
            "docker://{}: uploading a layer blob: {reason}",
            self.registry.image.whole()
        )))
    }

    /// Closes the upload; the registry must have received exactly the blob `digest`.
    pub fn finish(mut self, digest: &str) -> Result<()> {
        let image = self.registry.image.clone();
        let what = format!("uploading blob {digest}");
        if !self.piece.is_empty() {
            let _ = self.send_piece();
        }
        self.tx = None;
        let task = self.task.take();
        let done = task.map(|t| self.registry.rt.block_on(t));
        match done {
            Some(Ok(Ok(r))) if r.blob_digest == digest => {
                self.registry.count_streamed(r.size);
                Ok(())
            }
            Some(Ok(Ok(r))) => Err(registry_error(
                &image,
                &what,
                format!("{} arrived", r.blob_digest),
            )),
            Some(Ok(Err(e))) => Err(registry_error(&image, &what, e)),
            _ => Err(registry_error(&image, &what, "the upload task failed")),
        }
    }
}

impl std::io::Write for StreamedUpload {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(UPLOAD_PIECE - self.piece.len());
        self.piece.extend_from_slice(&buf[..n]);
        if self.piece.len() == UPLOAD_PIECE {
            self.send_piece()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StreamedUpload {
    fn drop(&mut self) {
        // Not finished: the session is abandoned (the registry expires it); no tag names it.
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
