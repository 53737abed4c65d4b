//! Creating a catalog: stream codes into a staging directory next to the target, let the caller
//! add `items.parquet` there, then checksum everything, write the manifest and swap the staging
//! directory into place in one rename.
//!
//! Readers therefore see either the old catalog or the new one, never a mix: a crash (or an
//! error, or a dropped writer) leaves at most a hidden `.NAME.partial-*` sibling behind, which no
//! reader opens.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{CWD, RenameFlags, renameat_with};
use rustix::io::Errno;

use crate::checksum::{Blake3Stream, hash_file};
use crate::error::{StoreError, StoreResult};
use crate::manifest::{
    CODES_FILE, FORMAT_NAME, FORMAT_VERSION, FileEntry, ITEMS_FILE, MANIFEST_FILE, MAX_DIM, MAX_MANIFEST_BYTES,
    Manifest, ManifestMeta,
};
use crate::reader::check_parquet_magic;
use crate::regular::{open_regular, process_alive};

/// Write buffer for the codes file.
const CODES_BUFFER: usize = 4 << 20;

/// Streams a new catalog into a staging directory and installs it atomically.
pub struct CatalogWriter {
    target: PathBuf,
    staging: PathBuf,
    dim: usize,
    overwrite: bool,
    codes: Option<BufWriter<File>>,
    checksum: Blake3Stream,
}

impl CatalogWriter {
    /// Starts a catalog of `dim`-byte codes that will live at `target`.
    ///
    /// Fails at once if `target` exists and `overwrite` is false, if `target` exists and is
    /// not a catalog of ours (a directory whose manifest names this format and version) or an
    /// empty directory, or if its parent does not exist.
    pub fn create(target: &Path, dim: usize, overwrite: bool) -> StoreResult<Self> {
        if dim == 0 || dim > MAX_DIM as usize {
            return Err(StoreError::InvalidArgument(format!("dim is {dim}, expected 1..={MAX_DIM}")));
        }
        check_target(target, overwrite)?;
        let name = target
            .file_name()
            .ok_or_else(|| StoreError::InvalidArgument(format!("{} does not name a directory", target.display())))?;
        let parent = parent_of(target);
        if !parent.is_dir() {
            return Err(StoreError::NotFound { path: parent });
        }
        remove_stale_staging(&parent, &name.to_string_lossy());
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let staging = parent.join(format!(".{}.partial-{}-{nanos}", name.to_string_lossy(), std::process::id()));
        fs::create_dir(&staging).map_err(StoreError::io(&staging))?;
        let codes_path = staging.join(CODES_FILE);
        let file = File::create(&codes_path).map_err(StoreError::io(&codes_path));
        // Build the writer before propagating the error so its Drop removes the staging dir.
        let mut writer = Self {
            target: target.to_path_buf(),
            staging,
            dim,
            overwrite,
            codes: None,
            checksum: Blake3Stream::default(),
        };
        writer.codes = Some(BufWriter::with_capacity(CODES_BUFFER, file?));
        Ok(writer)
    }

    /// Whether [`create`](Self::create) would accept `target` (it exists only if `overwrite`,
    /// and then is a catalog of ours or an empty directory): lets a caller refuse before any
    /// expensive work. `create` checks again, and once more just before installing.
    pub fn check_target(target: &Path, overwrite: bool) -> StoreResult<()> {
        check_target(target, overwrite)
    }

    /// The staging directory: the caller writes `items.parquet` (and any other data file) here
    /// before [`finish`](Self::finish).
    #[must_use]
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    /// Code width in bytes.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows appended so far.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.checksum.bytes() / self.dim as u64
    }

    /// Appends whole rows of codes (row-major, `dim` bytes each).
    pub fn append(&mut self, codes: &[u8]) -> StoreResult<()> {
        if codes.len() % self.dim != 0 {
            return Err(StoreError::Dimension {
                what: format!("{} bytes are not whole rows of dim {}", codes.len(), self.dim),
            });
        }
        let path = self.staging.join(CODES_FILE);
        let file =
            self.codes.as_mut().ok_or_else(|| StoreError::InvalidArgument("the writer is already finished".into()))?;
        file.write_all(codes).map_err(StoreError::io(path))?;
        self.checksum.update(codes);
        Ok(())
    }

    /// Checksums every data file, writes the manifest and moves the catalog into place.
    pub fn finish(mut self, meta: ManifestMeta) -> StoreResult<Manifest> {
        meta.quantizer.validate(self.dim)?;
        let codes_path = self.staging.join(CODES_FILE);
        let file = self
            .codes
            .take()
            .ok_or_else(|| StoreError::InvalidArgument("the writer is already finished".into()))?
            .into_inner()
            .map_err(|e| StoreError::Io { path: codes_path.clone(), source: e.into_error() })?;
        file.sync_all().map_err(StoreError::io(&codes_path))?;
        let mut files = self.hash_other_files()?;
        files.insert(CODES_FILE.to_string(), FileEntry { bytes: self.checksum.bytes(), blake3: self.checksum.hex() });
        let manifest = Manifest {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            count: self.count(),
            dim: self.dim as u32,
            encoder: meta.encoder,
            quantizer: meta.quantizer,
            head: meta.head,
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            files,
        };
        manifest.validate(&self.staging.join(MANIFEST_FILE))?;
        let manifest_path = self.staging.join(MANIFEST_FILE);
        write_synced(&manifest_path, manifest.to_json().as_bytes())?;
        sync_dir(&self.staging)?;
        self.install()?;
        Ok(manifest)
    }

    /// Hashes the files the caller put into the staging directory (everything but the codes
    /// and the manifest); `items.parquet` must be among them.
    fn hash_other_files(&self) -> StoreResult<std::collections::BTreeMap<String, FileEntry>> {
        let items = self.staging.join(ITEMS_FILE);
        if !items.is_file() {
            return Err(StoreError::format(
                &items,
                "missing: write items.parquet into the staging directory before finish",
            ));
        }
        check_parquet_magic(&items)?;
        let mut files = std::collections::BTreeMap::new();
        for entry in fs::read_dir(&self.staging).map_err(StoreError::io(&self.staging))? {
            let entry = entry.map_err(StoreError::io(&self.staging))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            // Subdirectories (index/, thumbs/) carry their own headers and checksums.
            if name == CODES_FILE || name == MANIFEST_FILE || path.is_dir() {
                continue;
            }
            File::open(&path).and_then(|f| f.sync_all()).map_err(StoreError::io(&path))?;
            let (bytes, blake3) = hash_file(&path)?;
            files.insert(name, FileEntry { bytes, blake3 });
        }
        Ok(files)
    }

    /// Moves the staging directory to the target: a no-replace rename for a new catalog, an
    /// atomic exchange for a replaced one (then the old one, now in staging, is deleted).
    fn install(&mut self) -> StoreResult<()> {
        check_target(&self.target, self.overwrite)?;
        let exists = self.target.exists();
        let flags = if exists { RenameFlags::EXCHANGE } else { RenameFlags::NOREPLACE };
        match renameat_with(CWD, &self.staging, CWD, &self.target, flags) {
            Ok(()) => {}
            Err(Errno::EXIST | Errno::NOTEMPTY) => {
                return Err(StoreError::AlreadyExists { path: self.target.clone() });
            }
            // Filesystems without renameat2 flags: two renames, the old catalog moved aside first.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => self.install_by_two_renames(exists)?,
            Err(e) => return Err(StoreError::Io { path: self.target.clone(), source: e.into() }),
        }
        if exists {
            // After the exchange (or the move aside) the old catalog lives at the staging path.
            // The new catalog is installed whatever happens here, so a failure to delete the old
            // one must not report the create as failed; what is left is a hidden staging
            // directory that the next create of this target sweeps once this process is gone.
            let _ = fs::remove_dir_all(&self.staging);
        }
        sync_dir(&parent_of(&self.target))
    }

    fn install_by_two_renames(&self, exists: bool) -> StoreResult<()> {
        if exists {
            let aside = self.staging.with_extension("old");
            fs::rename(&self.target, &aside).map_err(StoreError::io(&self.target))?;
            fs::rename(&self.staging, &self.target).map_err(StoreError::io(&self.target))?;
            fs::rename(&aside, &self.staging).map_err(StoreError::io(&aside))?;
        } else {
            fs::rename(&self.staging, &self.target).map_err(StoreError::io(&self.target))?;
        }
        Ok(())
    }
}

impl Drop for CatalogWriter {
    /// An unfinished writer removes its staging directory; a finished one has none left.
    fn drop(&mut self) {
        if self.staging.exists() {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Refuses targets that must not be written: an existing path without `overwrite`, or, with
/// it, anything but a catalog of ours or an empty directory (so a typo cannot delete a home
/// folder, nor a web project that happens to hold a `manifest.json`).
fn check_target(target: &Path, overwrite: bool) -> StoreResult<()> {
    let Ok(meta) = fs::symlink_metadata(target) else { return Ok(()) };
    if !overwrite {
        return Err(StoreError::AlreadyExists { path: target.to_path_buf() });
    }
    let not_catalog = |reason: String| Err(StoreError::NotACatalog { path: target.to_path_buf(), reason });
    if !meta.is_dir() {
        return not_catalog("not a directory".into());
    }
    if fs::read_dir(target).is_ok_and(|mut d| d.next().is_none()) {
        return Ok(());
    }
    let manifest = target.join(MANIFEST_FILE);
    let file = match open_regular(&manifest) {
        Ok(file) => file,
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return not_catalog(format!("no {MANIFEST_FILE}, and the directory is not empty"));
        }
        Err(e) => return not_catalog(e.to_string()),
    };
    let mut bytes = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_MANIFEST_BYTES + 1), &mut bytes) {
        return not_catalog(format!("{}: {e}", manifest.display()));
    }
    let identity = serde_json::from_slice::<serde_json::Value>(&bytes).ok().and_then(|v| {
        let format = v.get("format")?.as_str()?.to_string();
        let version = v.get("version")?.as_u64()?;
        Some((format, version))
    });
    match identity {
        Some((format, version)) if format == FORMAT_NAME && version == u64::from(FORMAT_VERSION) => Ok(()),
        Some((format, version)) => not_catalog(format!(
            "{MANIFEST_FILE} has format {format:?} version {version}, expected {FORMAT_NAME:?} version {FORMAT_VERSION}"
        )),
        None => not_catalog(format!("{MANIFEST_FILE} does not name the format {FORMAT_NAME:?}")),
    }
}

/// Removes staging directories of earlier creates of the same target whose process is gone
/// (killed mid-create): they can never be finished, and a 100M catalog's is 3 GB of disk.
/// Only on systems with `/proc`, where a live process can be told from a dead one.
fn remove_stale_staging(parent: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else { continue };
        let Some(pid) = rest.split(['-', '.']).next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if process_alive(pid) == Some(false) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    let mut file = File::create(path).map_err(StoreError::io(path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(StoreError::io(path))
}

/// Makes a directory's entries durable (the rename itself, not just the files' contents).
fn sync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::io(dir))
}
