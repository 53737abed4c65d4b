//! Integration tests of the store crate: round trips through the public API, and every way a
//! catalog on disk can be broken.

mod broken;
mod roundtrip;

use std::path::Path;

use clipbranches_store::{CatalogWriter, ITEMS_FILE, Manifest, ManifestMeta, QuantizerParams};

/// The smallest byte string the store accepts as parquet (magic at both ends); the real table is
/// written by the Python layer.
pub(crate) const FAKE_PARQUET: &[u8] = b"PAR1 rows PAR1";

/// Writes a catalog of `codes` (rows of `dim`) at `target`, appending in `chunk_rows` pieces.
pub(crate) fn write_catalog(target: &Path, dim: usize, codes: &[u8], chunk_rows: usize, overwrite: bool) -> Manifest {
    let mut writer = CatalogWriter::create(target, dim, overwrite).unwrap();
    for chunk in codes.chunks((chunk_rows * dim).max(dim)) {
        writer.append(chunk).unwrap();
    }
    std::fs::write(writer.staging_dir().join(ITEMS_FILE), FAKE_PARQUET).unwrap();
    writer.finish(meta()).unwrap()
}

/// Metadata with the paper's quantizer.
pub(crate) fn meta() -> ManifestMeta {
    ManifestMeta {
        encoder: serde_json::json!({"name": "test"}),
        quantizer: QuantizerParams::paper(),
        head: serde_json::Value::Null,
    }
}
