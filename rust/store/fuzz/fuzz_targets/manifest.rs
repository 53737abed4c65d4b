//! Fuzz the manifest parser: arbitrary bytes never panic, and whatever parses serialises and
//! parses back to the same manifest.
#![no_main]

use std::path::Path;

use clipbranches_store::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("manifest.json");
    if let Ok(manifest) = Manifest::parse(data, path) {
        let again = Manifest::parse(manifest.to_json().as_bytes(), path).expect("a parsed manifest re-parses");
        assert_eq!(again, manifest);
    }
});
