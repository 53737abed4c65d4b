//! Applying box models to a whole catalog, and nearest-neighbour search over its codes.
//!
//! - [`BoxSet`]: a model's boxes as given (each on a subset of dims, with inclusive uint8
//!   bounds and the ensemble member it belongs to), validated, with its [`BoxQuery`] (the boxes
//!   sorted by group, as every engine takes them) built once.
//! - [`scan::query`]: the fused scan over the catalog's row-major codes, testing every box per
//!   item in one pass. It needs no index; it is the fallback and, with [`naive`], the oracle.
//! - [`BlockIndex`]: items reordered along the leaves of a k-d tree, stored column-major in
//!   blocks with per-block bounds; a box skips blocks it misses, takes blocks it covers whole,
//!   and tests the rest with byte-wide SIMD compares. Counts are accumulated per block in cache,
//!   so no global sort or scattered counter is needed.
//! - [`topk::nearest`]: exact top-k by squared L2 over the codes, parallel.
//! - [`linear::accept`]: the rows a linear model on the codes accepts, with their scores.
//! - [`hybrid::Hybrid`]: the hybrid model's scan (linear score plus distances to the labelled
//!   codes), exact, in blocks of rows.
//!
//! - [`BlockIndex::estimate`]: a cost model that tells whether the index or the scan answers a
//!   query faster (the index, except on tiny catalogs); [`method::query`] asks it and runs the
//!   engine it picks ([`Method::Auto`]), or the one named.
//!
//! All parallel work runs on the pool of [`pool`], sized by `CLIPBRANCHES_NUM_THREADS`.

mod block_index;
mod boxes;
mod cost;
mod error;
mod format;
mod hits;
pub mod hybrid;
pub mod linear;
pub mod method;
pub mod naive;
pub mod pool;
pub mod scan;
mod simd;
pub mod topk;

pub use block_index::{BlockIndex, BuildOptions, DEFAULT_BLOCK_ITEMS};
pub use boxes::{BoxQuery, BoxSet, BoxSpec, CsrBoxes, MAX_BOXES, MAX_GROUP};
pub use cost::QueryCost;
pub use error::{IndexError, IndexResult};
pub use hits::Hits;
pub use method::Method;
