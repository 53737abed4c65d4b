//! `manifest.json`: what a catalog is (format, version, shape, encoder, quantizer, head) and a
//! checksum of every data file. Parsing is strict: a manifest this build cannot fully
//! understand is rejected with the reason, never half-read.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{StoreError, StoreResult};
use crate::quantize::QuantizerParams;

/// The `format` field every catalog manifest carries.
pub const FORMAT_NAME: &str = "clipbranches-catalog";
/// The catalog format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the manifest inside a catalog directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the codes (N x dim uint8, row-major).
pub const CODES_FILE: &str = "codes.u8";
/// File name of the per-item metadata table.
pub const ITEMS_FILE: &str = "items.parquet";
/// Largest dimension accepted; far above any sensible code width, it bounds allocations.
pub const MAX_DIM: u32 = 1 << 16;
/// Largest manifest read from disk; a real one is a few KB.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Size and checksum of one data file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// File size in bytes.
    pub bytes: u64,
    /// BLAKE3 digest, lower-case hex.
    pub blake3: String,
}

/// What the creator of a catalog supplies; the writer adds shape, time and checksums.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestMeta {
    /// Identity of the encoder that produced the embeddings (a JSON object), or null.
    #[serde(default)]
    pub encoder: Value,
    /// How float embeddings were turned into codes.
    pub quantizer: QuantizerParams,
    /// Identity of the projection head (a JSON object), or null.
    #[serde(default)]
    pub head: Value,
}

/// The parsed, validated manifest of a catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for manifests this build accepts.
    pub version: u32,
    /// Number of items (rows of the codes).
    pub count: u64,
    /// Bytes per code (columns of the codes).
    pub dim: u32,
    /// Encoder identity (object) or null.
    pub encoder: Value,
    /// Quantizer parameters.
    pub quantizer: QuantizerParams,
    /// Head identity (object) or null.
    pub head: Value,
    /// Creation time, RFC 3339, UTC.
    pub created: String,
    /// Every data file of the catalog with its size and checksum.
    pub files: BTreeMap<String, FileEntry>,
}

impl Manifest {
    /// Parses and validates manifest bytes. `path` only names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> StoreResult<Self> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| StoreError::format(path, format!("not valid JSON: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(StoreError::format(path, "expected a JSON object at the top level"));
        };
        // Check identity first so that a file of another kind gets the clearest message.
        match object.get("format").and_then(Value::as_str) {
            Some(FORMAT_NAME) => {}
            Some(other) => {
                return Err(StoreError::format(
                    path,
                    format!("format is {other:?}, expected {FORMAT_NAME:?}: not a clipbranches catalog"),
                ));
            }
            None => return Err(StoreError::format(path, format!("no \"format\" field: not a {FORMAT_NAME} manifest"))),
        }
        match object.get("version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(StoreError::format(
                    path,
                    format!("format version {v} is not supported (this build reads version {FORMAT_VERSION})"),
                ));
            }
            None => return Err(StoreError::format(path, "missing or non-integer \"version\" field")),
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| StoreError::format(path, format!("invalid manifest: {e}")))?;
        manifest.validate(path)?;
        Ok(manifest)
    }

    /// Checks every invariant a manifest must hold on its own (without looking at the files).
    pub fn validate(&self, path: &Path) -> StoreResult<()> {
        let bad = |reason: String| Err(StoreError::format(path, reason));
        if self.dim == 0 || self.dim > MAX_DIM {
            return bad(format!("dim is {}, expected 1..={MAX_DIM}", self.dim));
        }
        let Some(code_bytes) = self.count.checked_mul(u64::from(self.dim)) else {
            return bad(format!("count {} x dim {} overflows", self.count, self.dim));
        };
        for name in self.files.keys() {
            if !is_plain_file_name(name) {
                return bad(format!("file name {name:?} is not a plain file name inside the catalog"));
            }
        }
        for required in [CODES_FILE, ITEMS_FILE] {
            if !self.files.contains_key(required) {
                return bad(format!("\"files\" does not list {required}"));
            }
        }
        for (name, entry) in &self.files {
            if entry.blake3.len() != 64 || !entry.blake3.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad(format!("checksum of {name} is not a 64-digit hex BLAKE3 digest"));
            }
        }
        let recorded = self.files[CODES_FILE].bytes;
        if recorded != code_bytes {
            return bad(format!(
                "{CODES_FILE} is recorded as {recorded} bytes but count {} x dim {} = {code_bytes}",
                self.count, self.dim
            ));
        }
        for (field, value) in [("encoder", &self.encoder), ("head", &self.head)] {
            if !(value.is_null() || value.is_object()) {
                return bad(format!("\"{field}\" must be an object or null"));
            }
        }
        self.quantizer.validate(self.dim as usize).map_err(|e| StoreError::format(path, format!("quantizer: {e}")))
    }

    /// Pretty JSON, with a trailing newline.
    ///
    /// # Panics
    /// Never in practice: every field serialises (map keys are strings).
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a manifest always serialises");
        text.push('\n');
        text
    }
}

/// A name that stays inside the catalog directory: no separators, not `.`/`..`, not hidden.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Value {
        serde_json::json!({
            "format": FORMAT_NAME, "version": 1, "count": 2, "dim": 4,
            "encoder": null, "head": {"name": "h"},
            "quantizer": {"kind": "fixed", "scale": 127.5, "offset": 128.0},
            "created": "2026-01-01T00:00:00Z",
            "files": {
                "codes.u8": {"bytes": 8, "blake3": "0".repeat(64)},
                "items.parquet": {"bytes": 100, "blake3": "a".repeat(64)},
            }
        })
    }

    fn parse(v: &Value) -> StoreResult<Manifest> {
        Manifest::parse(v.to_string().as_bytes(), Path::new("m.json"))
    }

    fn reason(v: &Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn round_trips() {
        let m = parse(&good()).unwrap();
        assert_eq!(Manifest::parse(m.to_json().as_bytes(), Path::new("x")).unwrap(), m);
    }

    #[test]
    fn rejects_each_broken_field() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/format", Value::from("other"), "not a clipbranches catalog"),
            ("/version", Value::from(2), "version 2 is not supported"),
            ("/dim", Value::from(0), "dim is 0"),
            ("/count", Value::from(3), "recorded as 8 bytes"),
            ("/encoder", Value::from(5), "\"encoder\" must be an object"),
            ("/quantizer/scale", Value::from(-1.0), "quantizer"),
            ("/files/codes.u8/blake3", Value::from("xyz"), "not a 64-digit hex"),
        ];
        for (pointer, value, expected) in cases {
            let mut v = good();
            *v.pointer_mut(pointer).unwrap() = value;
            let message = reason(&v);
            assert!(message.contains(expected), "{pointer}: {message}");
        }
    }

    #[test]
    fn rejects_escaping_file_names_and_unknown_fields() {
        let mut v = good();
        v["files"]["../evil"] = serde_json::json!({"bytes": 1, "blake3": "0".repeat(64)});
        assert!(reason(&v).contains("not a plain file name"));
        let mut v = good();
        v["surprise"] = Value::from(1);
        assert!(reason(&v).contains("unknown field"));
        let mut v = good();
        v["files"].as_object_mut().unwrap().remove("items.parquet");
        assert!(reason(&v).contains("does not list items.parquet"));
    }

    #[test]
    fn rejects_non_json_and_non_objects() {
        let p = Path::new("m.json");
        assert!(Manifest::parse(b"{not json", p).unwrap_err().to_string().contains("not valid JSON"));
        assert!(Manifest::parse(b"[1]", p).unwrap_err().to_string().contains("JSON object"));
        assert!(Manifest::parse(b"{}", p).unwrap_err().to_string().contains("no \"format\""));
    }
}
