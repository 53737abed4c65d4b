//! Opening a catalog's files: only regular files that are really inside the catalog.
//!
//! A FIFO in place of a data file would block an `open` forever, and a symbolic link would
//! read a file outside the catalog (which its checksums do not protect against being swapped).
//! [`open_regular`] opens without following a final symbolic link and without blocking, checks
//! on the open descriptor that it is a regular file (nothing can be swapped in between), then
//! clears the non-blocking flag.

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags, fcntl_getfl, fcntl_setfl};
use rustix::io::Errno;

use crate::error::{StoreError, StoreResult};

/// Opens `path` for reading if it is a regular file and not a symbolic link.
///
/// A missing file is a [`StoreError::Io`] of kind `NotFound` (callers word that case); a
/// symbolic link, a FIFO, a socket, a device or a directory is a [`StoreError::Format`].
pub fn open_regular(path: &Path) -> StoreResult<File> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::LOOP) => {
            return Err(StoreError::format(
                path,
                "is a symbolic link; a catalog's files must be regular files inside it (refusing to follow it)",
            ));
        }
        Err(e) => return Err(StoreError::Io { path: path.to_path_buf(), source: e.into() }),
    };
    let kind = file.metadata().map_err(StoreError::io(path))?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_block_device() || kind.is_char_device() {
            "a device"
        } else {
            "not a file"
        };
        return Err(StoreError::format(path, format!("is {what}, not a regular file; refusing to read it")));
    }
    let current = fcntl_getfl(&file).map_err(|e| StoreError::Io { path: path.to_path_buf(), source: e.into() })?;
    fcntl_setfl(&file, current - OFlags::NONBLOCK)
        .map_err(|e| StoreError::Io { path: path.to_path_buf(), source: e.into() })?;
    Ok(file)
}

/// Whether the process `pid` is alive, judged from `/proc` (`None` where there is no `/proc`,
/// so the caller cannot tell and must leave the writer's files alone).
#[must_use]
pub fn process_alive(pid: u32) -> Option<bool> {
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return None;
    }
    Some(proc_root.join(pid.to_string()).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_symlinks_fifos_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(open_regular(&file).is_ok());
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(open_regular(&link).unwrap_err().to_string().contains("symbolic link"));
        let fifo = dir.path().join("p");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        assert!(open_regular(&fifo).unwrap_err().to_string().contains("FIFO"));
        assert!(open_regular(dir.path()).unwrap_err().to_string().contains("directory"));
        let missing = open_regular(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(missing, StoreError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    }
}
