//! Opening a catalog: validate the manifest and every file's size and header (cheap), and
//! memory-map the codes without reading them. [`Catalog::verify`] does the expensive part,
//! checksumming every data file.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::checksum::hash_file;
use crate::error::{StoreError, StoreResult};
use crate::manifest::{CODES_FILE, ITEMS_FILE, MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest};
use crate::regular::open_regular;

/// Parquet files start and end with these four bytes.
const PARQUET_MAGIC: &[u8; 4] = b"PAR1";

/// An open, read-only catalog.
pub struct Catalog {
    root: PathBuf,
    manifest: Manifest,
    /// `None` for a catalog of zero items (an empty file cannot be mapped).
    codes: Option<Mmap>,
}

impl Catalog {
    /// Opens the catalog at `root`: reads only the manifest and file metadata, maps the codes.
    pub fn open(root: &Path) -> StoreResult<Self> {
        match fs::metadata(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { path: root.to_path_buf() });
            }
            Err(e) => return Err(StoreError::Io { path: root.to_path_buf(), source: e }),
            Ok(meta) if !meta.is_dir() => return Err(StoreError::format(root, "not a directory, so not a catalog")),
            Ok(_) => {}
        }
        let manifest = read_manifest(&root.join(MANIFEST_FILE))?;
        for (name, entry) in &manifest.files {
            let path = root.join(name);
            let found = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => meta.len(),
                Ok(meta) if meta.is_symlink() => {
                    return Err(StoreError::format(
                        &path,
                        "is a symbolic link; a catalog's files must be regular files inside it (refusing to follow it)",
                    ));
                }
                Ok(meta) => {
                    use std::os::unix::fs::FileTypeExt;
                    let kind = meta.file_type();
                    let what = if kind.is_fifo() {
                        "a FIFO"
                    } else if kind.is_dir() {
                        "a directory"
                    } else {
                        "a special file"
                    };
                    return Err(StoreError::format(
                        &path,
                        format!("is {what}, not a regular file; refusing to read it"),
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StoreError::format(&path, format!("missing (listed in {MANIFEST_FILE})")));
                }
                Err(e) => return Err(StoreError::Io { path, source: e }),
            };
            if found != entry.bytes {
                return Err(StoreError::format(
                    &path,
                    format!("is {found} bytes but {MANIFEST_FILE} records {}: truncated or replaced", entry.bytes),
                ));
            }
        }
        check_parquet_magic(&root.join(ITEMS_FILE))?;
        let codes = map_codes(&root.join(CODES_FILE), manifest.files[CODES_FILE].bytes)?;
        Ok(Self { root: root.to_path_buf(), manifest, codes })
    }

    /// The catalog directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The validated manifest.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of items.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.manifest.count
    }

    /// Bytes per code.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.manifest.dim as usize
    }

    /// All codes, row-major `count x dim`, straight from the memory map.
    #[must_use]
    pub fn codes(&self) -> &[u8] {
        self.codes.as_deref().unwrap_or(&[])
    }

    /// The code of item `row`, if it exists.
    #[must_use]
    pub fn row(&self, row: u64) -> Option<&[u8]> {
        let dim = self.dim();
        let start = usize::try_from(row).ok()?.checked_mul(dim)?;
        self.codes().get(start..start + dim)
    }

    /// Checksums every data file against the manifest (reads the whole catalog).
    pub fn verify(&self) -> StoreResult<()> {
        for (name, entry) in &self.manifest.files {
            let path = self.root.join(name);
            let (bytes, found) = hash_file(&path)?;
            if bytes != entry.bytes {
                return Err(StoreError::format(
                    &path,
                    format!("is {bytes} bytes but {MANIFEST_FILE} records {}", entry.bytes),
                ));
            }
            if found != entry.blake3 {
                return Err(StoreError::Checksum { path, expected: entry.blake3.clone(), found });
            }
        }
        Ok(())
    }
}

fn read_manifest(path: &Path) -> StoreResult<Manifest> {
    let file = match open_regular(path) {
        Ok(f) => f,
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::format(path, "missing: the directory is not a catalog (or was never completed)"));
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes).map_err(StoreError::io(path))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(StoreError::format(path, format!("larger than {MAX_MANIFEST_BYTES} bytes: not a manifest")));
    }
    Manifest::parse(&bytes, path)
}

/// Checks the leading and trailing `PAR1` of a parquet file (reads 8 bytes).
pub(crate) fn check_parquet_magic(path: &Path) -> StoreResult<()> {
    let mut file = open_regular(path)?;
    let mut head = [0u8; 4];
    let mut tail = [0u8; 4];
    let ok = file.read_exact(&mut head).is_ok()
        && file.seek(SeekFrom::End(-4)).is_ok()
        && file.read_exact(&mut tail).is_ok()
        && &head == PARQUET_MAGIC
        && &tail == PARQUET_MAGIC;
    if ok { Ok(()) } else { Err(StoreError::format(path, "not a parquet file (no PAR1 header and footer)")) }
}

fn map_codes(path: &Path, bytes: u64) -> StoreResult<Option<Mmap>> {
    if bytes == 0 {
        return Ok(None);
    }
    let file = open_regular(path)?;
    // SAFETY: the map is read-only and the catalog's files are immutable once installed: every
    // writer builds a new directory and swaps it in, so no writer of ours truncates or rewrites
    // a mapped file (a replaced catalog's files are unlinked, which keeps existing maps valid).
    let map = unsafe { Mmap::map(&file) }.map_err(StoreError::io(path))?;
    if map.len() as u64 != bytes {
        return Err(StoreError::format(path, format!("mapped {} bytes, expected {bytes}", map.len())));
    }
    Ok(Some(map))
}
