//! The clipbranches catalog on disk (format version 1).
//!
//! A catalog is a directory holding `manifest.json`, `codes.u8` (N x dim uint8, row-major),
//! `items.parquet` (written by the Python layer) and optional extras. This crate owns the
//! format: it writes catalogs into a staging sibling and swaps them into place atomically
//! ([`CatalogWriter`]), opens them cheaply by memory-mapping the codes ([`Catalog`]), checks
//! every data file against its recorded checksum on request ([`Catalog::verify`]), and holds the
//! quantizer that turns float embeddings into the codes ([`QuantizerParams`]).
//!
//! The crate knows nothing of Python; `clipbranches-bindings` converts.

mod checksum;
mod error;
mod manifest;
mod quantize;
mod reader;
mod regular;
mod writer;

pub use checksum::{Blake3Stream, hash_file};
pub use error::{StoreError, StoreResult};
pub use manifest::{
    CODES_FILE, FORMAT_NAME, FORMAT_VERSION, FileEntry, ITEMS_FILE, MANIFEST_FILE, Manifest, ManifestMeta,
};
pub use quantize::QuantizerParams;
pub use reader::Catalog;
pub use regular::{open_regular, process_alive};
pub use writer::CatalogWriter;
