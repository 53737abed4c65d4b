//! Integration tests of the index crate: every fast path against its brute-force twin.

mod boxes;
mod nearest;
mod persist;
