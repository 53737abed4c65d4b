//! Every way a catalog on disk can be damaged gives a typed error naming the file.

use std::fs;
use std::path::{Path, PathBuf};

use clipbranches_store::{CODES_FILE, Catalog, ITEMS_FILE, MANIFEST_FILE, StoreError};

use crate::write_catalog;

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cat");
    let codes: Vec<u8> = (0..=255).collect();
    write_catalog(&target, 8, &codes, 5, false);
    (dir, target)
}

fn open_err(path: &Path) -> StoreError {
    Catalog::open(path).err().expect("opening a broken catalog must fail")
}

fn edit_manifest(target: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = target.join(MANIFEST_FILE);
    let mut value: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(&mut value);
    fs::write(&path, value.to_string()).unwrap();
}

#[test]
fn missing_directory() {
    let err = open_err(Path::new("/definitely/not/here"));
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("/definitely/not/here"));
}

#[test]
fn a_file_is_not_a_catalog() {
    let (_dir, target) = fixture();
    let err = open_err(&target.join(CODES_FILE));
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn missing_files() {
    for name in [MANIFEST_FILE, CODES_FILE, ITEMS_FILE] {
        let (_dir, target) = fixture();
        fs::remove_file(target.join(name)).unwrap();
        let err = open_err(&target);
        assert!(matches!(err, StoreError::Format { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name) && err.to_string().contains("missing"), "{err}");
    }
}

#[test]
fn truncated_codes() {
    let (_dir, target) = fixture();
    let path = target.join(CODES_FILE);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let err = open_err(&target);
    assert!(err.to_string().contains("253 bytes but manifest.json records 256"), "{err}");
}

#[test]
fn count_that_does_not_match_codes() {
    let (_dir, target) = fixture();
    edit_manifest(&target, |m| m["count"] = 33.into());
    let err = open_err(&target);
    assert!(err.to_string().contains("recorded as 256 bytes but count 33 x dim 8 = 264"), "{err}");
}

#[test]
fn wrong_format_version_and_invalid_json() {
    let (_dir, target) = fixture();
    edit_manifest(&target, |m| m["format"] = "parquet-dataset".into());
    assert!(open_err(&target).to_string().contains("not a clipbranches catalog"));
    edit_manifest(&target, |m| {
        m["format"] = "clipbranches-catalog".into();
        m["version"] = 7.into();
    });
    assert!(open_err(&target).to_string().contains("version 7 is not supported"));
    fs::write(target.join(MANIFEST_FILE), b"{\"format\": ").unwrap();
    let err = open_err(&target);
    assert!(err.to_string().contains("manifest.json") && err.to_string().contains("not valid JSON"), "{err}");
}

#[test]
fn items_that_are_not_parquet() {
    let (_dir, target) = fixture();
    let path = target.join(ITEMS_FILE);
    let len = fs::metadata(&path).unwrap().len() as usize;
    fs::write(&path, vec![b'x'; len]).unwrap();
    assert!(open_err(&target).to_string().contains("not a parquet file"));
}

#[test]
fn flipped_bytes_are_caught_by_verify_only() {
    for name in [CODES_FILE, ITEMS_FILE] {
        let (_dir, target) = fixture();
        let path = target.join(name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[5] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let catalog = Catalog::open(&target).expect("same size and magic: open stays cheap and succeeds");
        let err = catalog.verify().unwrap_err();
        assert!(matches!(err, StoreError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains(name));
    }
}

#[test]
fn symlinked_files_are_refused_not_followed() {
    for name in [CODES_FILE, ITEMS_FILE, MANIFEST_FILE] {
        let (dir, target) = fixture();
        let outside = dir.path().join("outside");
        fs::rename(target.join(name), &outside).unwrap();
        std::os::unix::fs::symlink(&outside, target.join(name)).unwrap();
        let err = open_err(&target);
        assert!(matches!(err, StoreError::Format { .. }), "{name}: {err}");
        assert!(err.to_string().contains("symbolic link"), "{name}: {err}");
    }
}

#[test]
fn fifos_in_place_of_files_are_refused_without_blocking() {
    for name in [CODES_FILE, ITEMS_FILE, MANIFEST_FILE] {
        let (_dir, target) = fixture();
        fs::remove_file(target.join(name)).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, target.join(name), rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        // With no writer, a blocking open of a FIFO would never return.
        let err = open_err(&target);
        assert!(matches!(err, StoreError::Format { .. }), "{name}: {err}");
        assert!(err.to_string().contains("FIFO") || err.to_string().contains("not a regular file"), "{name}: {err}");
    }
}
