//! Saving and loading an index: round trip, and every way a file can be wrong.

use std::fs;

use clipbranches_index::{BlockIndex, BoxQuery, BoxSpec, BuildOptions, IndexError};

const SUM_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SUM_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn built() -> (Vec<u8>, BlockIndex) {
    let codes: Vec<u8> = (0..5000u32 * 4).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let index = BlockIndex::build(&codes, 4, SUM_A, BuildOptions { block_items: 128 }).unwrap();
    (codes, index)
}

fn query() -> BoxQuery {
    BoxQuery::new(4, vec![BoxSpec { dims: vec![1, 3], lo: vec![10, 50], hi: vec![120, 200], group: 0 }]).unwrap()
}

#[test]
fn save_then_open_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index/blocks.cbi");
    let (_, index) = built();
    index.save(&path).unwrap();
    let loaded = BlockIndex::open(&path, SUM_A).unwrap();
    assert_eq!(loaded.query(&query()).unwrap(), index.query(&query()).unwrap());
    assert_eq!(fs::metadata(&path).unwrap().len() as usize, index.bytes());
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
}

#[test]
fn an_index_of_another_catalog_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.cbi");
    built().1.save(&path).unwrap();
    let err = BlockIndex::open(&path, SUM_B).err().unwrap();
    assert!(matches!(err, IndexError::Stale { .. }), "{err}");
    assert!(err.to_string().contains("rebuild the index"));
}

#[test]
fn corrupt_truncated_and_foreign_files_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.cbi");
    built().1.save(&path).unwrap();
    let good = fs::read(&path).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut b = good.clone();
                let n = b.len();
                b[n - 7] ^= 1;
                b
            },
            "checksum mismatch",
        ),
        (
            {
                let mut b = good.clone();
                b[200] ^= 0x80;
                b
            },
            "checksum mismatch",
        ),
        (good[..good.len() - 1].to_vec(), "truncated"),
        (
            {
                let mut b = good.clone();
                b[0] = b'X';
                b
            },
            "bad magic",
        ),
        (
            {
                let mut b = good.clone();
                b[8] = 9;
                b
            },
            "version 9 is not supported",
        ),
        (b"short".to_vec(), "bad magic"),
    ];
    for (bytes, message) in cases {
        fs::write(&path, &bytes).unwrap();
        let err = BlockIndex::open(&path, SUM_A).err().unwrap();
        assert!(matches!(err, IndexError::Format { .. }), "{err}");
        assert!(err.to_string().contains(message), "{message}: {err}");
    }
    fs::remove_file(&path).unwrap();
    assert!(BlockIndex::open(&path, SUM_A).err().unwrap().to_string().contains("build the index first"));
}

#[test]
fn an_index_of_another_shape_is_refused_even_with_the_right_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.cbi");
    built().1.save(&path).unwrap();
    assert!(BlockIndex::open_for(&path, SUM_A, 5000, 4).is_ok());
    for (count, dim) in [(4000, 4), (5000, 8)] {
        let err = BlockIndex::open_for(&path, SUM_A, count, dim).err().unwrap();
        assert!(matches!(err, IndexError::Format { .. }), "{err}");
        assert!(err.to_string().contains("not this catalog's index"), "{err}");
    }
}

#[test]
fn symlinked_and_fifo_index_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside.cbi");
    built().1.save(&outside).unwrap();
    let link = dir.path().join("link.cbi");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let err = BlockIndex::open(&link, SUM_A).err().unwrap();
    assert!(matches!(err, IndexError::Format { .. }) && err.to_string().contains("symbolic link"), "{err}");
    let fifo = dir.path().join("fifo.cbi");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let err = BlockIndex::open(&fifo, SUM_A).err().unwrap();
    assert!(matches!(err, IndexError::Format { .. }) && err.to_string().contains("FIFO"), "{err}");
}

#[test]
fn partials_of_dead_writers_are_swept_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.cbi");
    // pid 4194304 is above Linux's largest pid_max, so no process has it.
    let dead = dir.path().join(".blocks.cbi.partial-4194304");
    let live = dir.path().join(".blocks.cbi.partial-1");
    fs::write(&dead, b"x").unwrap();
    fs::write(&live, b"x").unwrap();
    built().1.save(&path).unwrap();
    assert!(!dead.exists());
    assert!(live.exists());
}

#[test]
fn a_refused_check_before_the_rename_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.cbi");
    let refuse = || Err(IndexError::InvalidArgument("the catalog changed".into()));
    let err = built().1.save_checked(&path, &refuse).err().unwrap();
    assert!(err.to_string().contains("the catalog changed"));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing installed, no partial left");
}
