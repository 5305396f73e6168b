//! Opening what the user names as an image: a bootstrap, or a packed ("nydus layer") blob
//! with the bootstrap inlined. Every command that reads an image goes through here, so
//! `ls`, `inspect`, `check`, `cat`, `unpack` and `export` accept the same inputs.

use crate::output::shown;
use crate::CliResult;
use rafs_chunker::{BlobReader, FileSource};
use rafs_format::model::Image;
use rafs_format::source::Bootstrap;
use rafs_reader::{BlobSource, ImageReader};
use std::path::{Path, PathBuf};

/// An image file as given.
pub struct ImageFile {
    path: PathBuf,
    file: Bootstrap,
    /// The bootstrap inlined in a packed blob (`None`: the file is the bootstrap).
    inlined: Option<Vec<u8>>,
}

impl ImageFile {
    /// Opens `path`: a bootstrap when it looks like one, else a packed blob's inlined
    /// bootstrap.
    pub fn open(path: &Path) -> CliResult<Self> {
        let file = Bootstrap::open(path).map_err(|e| match e {
            rafs_format::Error::Io { source, .. } => format!("{}: {source}", shown(path)),
            e => format!("{}: {e}", shown(path)),
        })?;
        let detected = rafs_format::detect(file.bytes());
        let inlined = match &detected {
            Ok(_) => None,
            Err(_) => BlobReader::open_sections(file.bytes())
                .ok()
                .and_then(|r| r.bootstrap().ok()),
        };
        if let (Err(e), None) = (&detected, &inlined) {
            return Err(format!(
                "{}: neither a bootstrap nor a blob with an inlined bootstrap: {e}",
                shown(path)
            )
            .into());
        }
        Ok(ImageFile {
            path: path.to_path_buf(),
            file,
            inlined,
        })
    }

    /// The bootstrap's bytes.
    pub fn bootstrap(&self) -> &[u8] {
        self.inlined.as_deref().unwrap_or(self.file.bytes())
    }

    /// Decodes the bootstrap.
    pub fn decode(&self) -> CliResult<Image> {
        rafs_format::decode(self.bootstrap())
            .map_err(|e| format!("{}: {e}", shown(&self.path)).into())
    }

    /// A reader of `image` (decoded from this file) with its blobs: the packed blob's own
    /// data from this file, other blobs by id from `blob_dir` (default: this file's
    /// directory).
    pub fn reader(&self, image: Image, blob_dir: Option<&Path>) -> CliResult<ImageReader> {
        self.reader_with_blob(image, blob_dir, None)
    }

    /// [`ImageFile::reader`], with `blob` (when given) as the file of the image's own data
    /// blob: the one its bootstrap names by the inline placeholder, the only one, or the one
    /// named as the file is.
    pub fn reader_with_blob(
        &self,
        image: Image,
        blob_dir: Option<&Path>,
        blob: Option<&Path>,
    ) -> CliResult<ImageReader> {
        let single = image.blobs.len() == 1;
        let own = |b: &rafs_format::model::Blob| {
            blob.filter(|f| {
                single
                    || b.blob_id.starts_with("xxxxxxxx")
                    || f.file_name().is_some_and(|n| *n == *b.blob_id)
            })
        };
        let dir = blob_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| crate::output::parent_dir(&self.path));
        let packed = self.inlined.is_some();
        let path = &self.path;
        let reader = ImageReader::open_with_meta(
            image,
            |b| {
                if let Some(file) = own(b) {
                    return this_file(file, b).map(Some);
                }
                // The reference's placeholder id of an inlined bootstrap's own blob.
                if packed && b.blob_id.starts_with("xxxxxxxx") {
                    return this_file(path, b).map(Some);
                }
                rafs_reader::blob_in_dir(&dir, b)
            },
            |b| {
                // A zran metadata blob holding this bootstrap records no digest of itself.
                if packed && b.meta_digest == [0; 32] {
                    return this_file(path, b).map(Some);
                }
                rafs_reader::zran_meta_in_dir(&dir, b)
            },
        )?;
        Ok(reader)
    }
}

/// The image file itself as the source of `blob` (its packed data, or its zran metadata).
fn this_file(path: &Path, blob: &rafs_format::model::Blob) -> rafs_reader::Result<BlobSource> {
    let f = FileSource::open(path).map_err(|e| rafs_reader::Error::BlobInvalid {
        blob_id: blob.blob_id.clone(),
        reason: format!("{}: {e}", shown(path)),
    })?;
    Ok(Box::new(f))
}
