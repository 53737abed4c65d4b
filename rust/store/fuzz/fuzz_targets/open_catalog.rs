//! Fuzz `Catalog::open` (manifest, file sizes, parquet header and footer, mmap): the input is
//! split into a manifest and an items file next to a fixed 64-byte codes file. Opening must
//! fail cleanly or give a catalog whose codes have exactly count x dim bytes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use clipbranches_store::{Catalog, CODES_FILE, ITEMS_FILE, MANIFEST_FILE};
use libfuzzer_sys::fuzz_target;

fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cb-fuzz-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(CODES_FILE), [7u8; 64]).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (manifest, items) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let root = root();
    std::fs::write(root.join(MANIFEST_FILE), manifest).unwrap();
    std::fs::write(root.join(ITEMS_FILE), items).unwrap();
    if let Ok(catalog) = Catalog::open(root) {
        assert_eq!(catalog.codes().len() as u64, catalog.count() * catalog.dim() as u64);
        let _ = catalog.verify();
    }
});
