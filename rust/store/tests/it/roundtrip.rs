//! Write, then read: any shape and content comes back byte for byte.

use clipbranches_store::{CODES_FILE, Catalog, CatalogWriter, StoreError};
use proptest::prelude::*;

use crate::{meta, write_catalog};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn codes_round_trip(dim in 1usize..70, rows in 0usize..300, chunk_rows in 1usize..64, seed in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("cat");
        let mut state = seed | 1;
        let codes: Vec<u8> = (0..rows * dim).map(|_| { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state as u8 }).collect();
        let manifest = write_catalog(&target, dim, &codes, chunk_rows, false);
        prop_assert_eq!(manifest.count, rows as u64);
        let catalog = Catalog::open(&target).unwrap();
        prop_assert_eq!(catalog.codes(), &codes[..]);
        prop_assert_eq!(catalog.dim(), dim);
        prop_assert_eq!(catalog.manifest(), &manifest);
        if rows > 0 {
            prop_assert_eq!(catalog.row(rows as u64 - 1).unwrap(), &codes[(rows - 1) * dim..]);
        }
        prop_assert!(catalog.row(rows as u64).is_none());
        catalog.verify().unwrap();
        // Only the catalog is left in the parent: no staging directory survives.
        prop_assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

#[test]
fn overwrite_replaces_and_old_maps_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cat");
    write_catalog(&target, 2, &[1, 2, 3, 4], 1, false);
    let old = Catalog::open(&target).unwrap();
    let err = CatalogWriter::create(&target, 2, false).err().unwrap();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    write_catalog(&target, 3, &[9, 9, 9], 1, true);
    let new = Catalog::open(&target).unwrap();
    assert_eq!(new.codes(), &[9, 9, 9]);
    // The replaced catalog's files are unlinked, not rewritten: an open map still reads them.
    assert_eq!(old.codes(), &[1, 2, 3, 4]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn dropped_writer_leaves_nothing_and_old_catalog_intact() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cat");
    write_catalog(&target, 1, &[7], 1, false);
    let mut writer = CatalogWriter::create(&target, 1, true).unwrap();
    writer.append(&[1, 2, 3]).unwrap();
    let staging = writer.staging_dir().to_path_buf();
    assert!(staging.join(CODES_FILE).exists());
    drop(writer);
    assert!(!staging.exists());
    assert_eq!(Catalog::open(&target).unwrap().codes(), &[7]);
}

#[test]
fn finish_without_items_fails_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cat");
    let writer = CatalogWriter::create(&target, 4, false).unwrap();
    let staging = writer.staging_dir().to_path_buf();
    let err = writer.finish(meta()).unwrap_err();
    assert!(err.to_string().contains("items.parquet"), "{err}");
    assert!(!staging.exists() && !target.exists());
}

#[test]
fn writer_rejects_ragged_rows_bad_dims_and_unsafe_targets() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = CatalogWriter::create(&dir.path().join("a"), 4, false).unwrap();
    assert!(matches!(writer.append(&[1, 2, 3]), Err(StoreError::Dimension { .. })));
    assert!(matches!(CatalogWriter::create(&dir.path().join("b"), 0, false), Err(StoreError::InvalidArgument(_))));
    let missing_parent = dir.path().join("no/such/parent/c");
    assert!(matches!(CatalogWriter::create(&missing_parent, 4, false), Err(StoreError::NotFound { .. })));
    // A non-empty directory that is not a catalog is never replaced, even with overwrite.
    let precious = dir.path().join("home");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), b"...").unwrap();
    let err = CatalogWriter::create(&precious, 4, true).err().unwrap();
    assert!(err.to_string().contains("not a clipbranches catalog"), "{err}");
    assert!(precious.join("thesis.tex").exists());
    // Nor is one that holds a manifest.json of another kind (a web project).
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("src")).unwrap();
    std::fs::write(web.join("manifest.json"), br#"{"name": "app", "version": "1.0.0"}"#).unwrap();
    std::fs::write(web.join("src/main.js"), b"main()").unwrap();
    let err = CatalogWriter::create(&web, 4, true).err().unwrap();
    assert!(matches!(err, StoreError::NotACatalog { .. }), "{err}");
    assert!(err.to_string().contains("not a clipbranches catalog"), "{err}");
    assert!(web.join("src/main.js").exists());
}

#[test]
fn stale_staging_of_a_dead_process_is_swept_but_a_live_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cat");
    // pid 4194304 is above Linux's pid_max, so no process has it.
    let dead = dir.path().join(".cat.partial-4194304-1");
    let live = dir.path().join(format!(".cat.partial-{}-1", std::process::id()));
    for d in [&dead, &live] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join(CODES_FILE), [0u8; 8]).unwrap();
    }
    write_catalog(&target, 1, &[1], 1, false);
    assert!(!dead.exists());
    assert!(live.exists());
}
