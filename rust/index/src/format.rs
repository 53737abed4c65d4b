//! The index file (`<catalog>/index/blocks.cbi`, version 1): a 128-byte header, then the
//! sections, each starting on a 64-byte boundary. All integers little-endian.
//!
//! ```text
//! 0    8  magic  "CBINDEX\0"
//! 8    4  version (1)
//! 12   4  dim
//! 16   8  count (items)
//! 24   4  block_items
//! 28   4  reserved (0)
//! 32  64  BLAKE3 of the catalog's codes.u8, hex (which catalog this index belongs to)
//! 96  32  BLAKE3 of every byte after the header (raw)
//! 128     rows: count x u32 (catalog row of each position in tree order)
//!         bounds: blocks x (dim lower bounds, dim upper bounds)
//!         columns: blocks x dim x block_items bytes
//! ```

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{IndexError, IndexResult};

/// File magic.
pub const MAGIC: &[u8; 8] = b"CBINDEX\0";
/// The index file version this build reads and writes.
pub const VERSION: u32 = 1;
/// Header size in bytes.
pub const HEADER: usize = 128;
const ALIGN: usize = 64;
/// Byte offset of the rows section (right after the header).
pub const ROWS_AT: usize = HEADER;

/// The shape of an index, from which every section's place follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Code width.
    pub dim: usize,
    /// Number of items.
    pub count: usize,
    /// Items per block.
    pub block_items: usize,
}

impl Layout {
    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.count.div_ceil(self.block_items)
    }

    /// Byte offset of the bounds section.
    pub fn bounds_at(&self) -> usize {
        (ROWS_AT + self.count * 4).next_multiple_of(ALIGN)
    }

    /// Byte offset of the columns section.
    pub fn columns_at(&self) -> usize {
        (self.bounds_at() + self.blocks() * 2 * self.dim).next_multiple_of(ALIGN)
    }

    /// Total file size.
    pub fn len(&self) -> usize {
        self.columns_at() + self.blocks() * self.dim * self.block_items
    }
}

/// The bytes of an index: owned after a build (8-byte aligned), mapped after a load.
pub enum Storage {
    /// Built in memory.
    Owned(Vec<u64>, usize),
    /// Mapped from a file.
    Mapped(Mmap),
}

impl Storage {
    /// A zeroed, 8-byte-aligned buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Self {
        Self::Owned(vec![0u64; len.div_ceil(8)], len)
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: a Vec<u64> of n elements is 8n initialised bytes; `len <= 8n`.
            Self::Owned(words, len) => unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), *len) },
            Self::Mapped(map) => map,
        }
    }

    /// The bytes, mutably (only an owned buffer, while it is being built).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            // SAFETY: as in `bytes`, and the borrow of `words` is unique.
            Self::Owned(words, len) => unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), *len) },
            Self::Mapped(_) => unreachable!("mapped indexes are read-only"),
        }
    }
}

/// Views `bytes` (4-aligned, length a multiple of 4) as u32s.
pub fn as_u32s(bytes: &[u8]) -> &[u32] {
    // SAFETY: every bit pattern is a valid u32; `align_to` puts only aligned whole words in
    // the middle part, and the assert rejects anything left over.
    let (head, words, tail) = unsafe { bytes.align_to::<u32>() };
    assert!(head.is_empty() && tail.is_empty(), "u32 section misaligned");
    words
}

/// Mutable twin of [`as_u32s`].
pub fn as_u32s_mut(bytes: &mut [u8]) -> &mut [u32] {
    // SAFETY: as in `as_u32s`.
    let (head, words, tail) = unsafe { bytes.align_to_mut::<u32>() };
    assert!(head.is_empty() && tail.is_empty(), "u32 section misaligned");
    words
}

/// Writes the header of `layout` into `bytes` (the payload checksum is filled by [`seal`]).
pub fn write_header(bytes: &mut [u8], layout: Layout, codes_checksum: &str) -> IndexResult<()> {
    if codes_checksum.len() != 64 || !codes_checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IndexError::InvalidArgument("the catalog checksum must be 64 hex digits".into()));
    }
    bytes[0..8].copy_from_slice(MAGIC);
    bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
    bytes[12..16].copy_from_slice(&(layout.dim as u32).to_le_bytes());
    bytes[16..24].copy_from_slice(&(layout.count as u64).to_le_bytes());
    bytes[24..28].copy_from_slice(&(layout.block_items as u32).to_le_bytes());
    bytes[32..96].copy_from_slice(codes_checksum.as_bytes());
    Ok(())
}

/// Records the payload checksum in the header.
pub fn seal(bytes: &mut [u8]) {
    let digest = payload_digest(bytes);
    bytes[96..128].copy_from_slice(&digest);
}

fn payload_digest(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    crate::pool::install(|| hasher.update_rayon(&bytes[HEADER..]));
    *hasher.finalize().as_bytes()
}

/// Parses and checks a header against the file length; returns the layout and the catalog
/// checksum it records.
pub fn read_header(bytes: &[u8], path: &Path) -> IndexResult<(Layout, String)> {
    let bad = |reason: String| Err(IndexError::format(path, reason));
    if bytes.len() < HEADER || &bytes[0..8] != MAGIC {
        return bad("not a clipbranches index file (bad magic or shorter than its header)".into());
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = u32_at(8);
    if version != VERSION {
        return bad(format!(
            "index version {version} is not supported (this build reads {VERSION}); rebuild the index"
        ));
    }
    let dim = u32_at(12) as usize;
    let count = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let block_items = u32_at(24) as usize;
    if dim == 0 || dim > 1 << 16 || block_items == 0 || block_items % 128 != 0 || count > u64::from(u32::MAX) {
        return bad(format!("implausible header (dim {dim}, count {count}, block_items {block_items})"));
    }
    let layout = Layout { dim, count: count as usize, block_items };
    if layout.len() != bytes.len() {
        return bad(format!("is {} bytes, its header implies {}: truncated or corrupt", bytes.len(), layout.len()));
    }
    let checksum = std::str::from_utf8(&bytes[32..96]).ok().filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some(checksum) = checksum else {
        return bad("the catalog checksum in the header is not hex".into());
    };
    Ok((layout, checksum.to_string()))
}

/// Checks the payload against the checksum in the header (reads the whole file).
pub fn verify_payload(bytes: &[u8], path: &Path) -> IndexResult<()> {
    if payload_digest(bytes)[..] == bytes[96..128] {
        Ok(())
    } else {
        Err(IndexError::format(path, "checksum mismatch: the index file is corrupt; rebuild it"))
    }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, synced.
///
/// `before_rename` runs just before the rename, so a caller can check that the directory is
/// still the catalog the index was built for (an error there leaves the old file in place).
/// Partial files of earlier writers that died mid-write are removed first.
pub fn write_atomically(path: &Path, bytes: &[u8], before_rename: &dyn Fn() -> IndexResult<()>) -> IndexResult<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(IndexError::io(dir))?;
    let name = path.file_name().map_or("index".into(), |n| n.to_string_lossy());
    remove_dead_partials(dir, &name);
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })()
    .map_err(IndexError::io(path));
    let result = written
        .and_then(|()| before_rename())
        .and_then(|()| fs::rename(&tmp, path).and_then(|()| File::open(dir)?.sync_all()).map_err(IndexError::io(path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes `.NAME.partial-PID` files in `dir` whose writer process is gone (killed mid-write):
/// they can never be finished, and each is the size of a whole index. Only where `/proc` tells
/// a live process from a dead one.
fn remove_dead_partials(dir: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if clipbranches_store::process_alive(pid) == Some(false) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Maps an index file read-only (a regular file only: never a symbolic link, nor a FIFO).
pub fn map(path: &Path) -> IndexResult<Mmap> {
    let file = match clipbranches_store::open_regular(path) {
        Ok(file) => file,
        Err(clipbranches_store::StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(IndexError::format(path, "missing: build the index first (catalog.build_index())"));
        }
        Err(clipbranches_store::StoreError::Format { reason, .. }) => return Err(IndexError::format(path, reason)),
        Err(clipbranches_store::StoreError::Io { source, .. }) => {
            return Err(IndexError::Io { path: path.to_path_buf(), source });
        }
        Err(e) => return Err(IndexError::Store(e)),
    };
    // SAFETY: read-only map of a file that is only ever replaced by rename, never rewritten in
    // place, so the mapped bytes cannot change under the map.
    unsafe { Mmap::map(&file) }.map_err(IndexError::io(path))
}
