//! Which engine answers a box query, and the one entry point that asks it: the block index or
//! the fused scan, chosen by the cost model of [`BlockIndex::estimate`].

use std::str::FromStr;

use crate::block_index::BlockIndex;
use crate::boxes::BoxQuery;
use crate::error::{IndexError, IndexResult};
use crate::hits::Hits;
use crate::scan;

/// How a box query is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The scan without an index; otherwise whichever engine the index's cost model predicts
    /// to be faster.
    Auto,
    /// The block index.
    Index,
    /// The fused scan of the row-major codes (no index needed).
    Scan,
}

impl FromStr for Method {
    type Err = IndexError;

    /// `"auto"`, `"index"` or `"scan"`.
    fn from_str(name: &str) -> IndexResult<Self> {
        match name {
            "auto" => Ok(Self::Auto),
            "index" => Ok(Self::Index),
            "scan" => Ok(Self::Scan),
            _ => Err(IndexError::InvalidArgument(format!("method must be 'auto', 'index' or 'scan', got '{name}'"))),
        }
    }
}

impl Method {
    /// The name [`Method::from_str`] reads.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Index => "index",
            Self::Scan => "scan",
        }
    }

    /// The engine that answers `query` (never [`Method::Auto`]): `Auto` is the scan without
    /// an index, otherwise the one [`BlockIndex::estimate`] predicts to be faster.
    pub fn resolve(self, index: Option<&BlockIndex>, query: &BoxQuery) -> IndexResult<Method> {
        match (self, index) {
            (Self::Index, None) => Err(IndexError::InvalidArgument("method 'index' needs an index".into())),
            (Self::Auto, None) => Ok(Self::Scan),
            (Self::Auto, Some(index)) => {
                Ok(if index.estimate(query).prefers_scan() { Self::Scan } else { Self::Index })
            }
            (method, _) => Ok(method),
        }
    }
}

/// Answers `query` over a catalog: its row-major `codes` and, if built, its `index`, with the
/// engine `method` resolves to (see [`Method::resolve`]). Hits are ascending from the scan and
/// in index order from the index.
pub fn query(codes: &[u8], index: Option<&BlockIndex>, query: &BoxQuery, method: Method) -> IndexResult<Hits> {
    if let Some(index) = index {
        if index.dim() != query.dim() || index.count() * index.dim() != codes.len() {
            return Err(IndexError::Dimension(format!(
                "the index holds {} items of dim {}, the codes are {} bytes for queries of dim {}",
                index.count(),
                index.dim(),
                codes.len(),
                query.dim()
            )));
        }
    }
    match (method.resolve(index, query)?, index) {
        (Method::Index, Some(index)) => index.query(query),
        _ => scan::query(codes, query),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_index::BuildOptions;
    use crate::boxes::BoxSpec;

    const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn names_round_trip_and_bad_names_are_errors() {
        for method in [Method::Auto, Method::Index, Method::Scan] {
            assert_eq!(method.name().parse::<Method>().unwrap(), method);
        }
        assert!("tree".parse::<Method>().unwrap_err().to_string().contains("got 'tree'"));
    }

    #[test]
    fn auto_scans_without_an_index_and_index_needs_one() {
        let codes: Vec<u8> = (0..=255).collect();
        let query = BoxQuery::new(1, vec![BoxSpec { dims: vec![0], lo: vec![10], hi: vec![19], group: 0 }]).unwrap();
        assert_eq!(Method::Auto.resolve(None, &query).unwrap(), Method::Scan);
        assert!(Method::Index.resolve(None, &query).unwrap_err().to_string().contains("needs an index"));
        let index = BlockIndex::build(&codes, 1, ZERO, BuildOptions { block_items: 128 }).unwrap();
        let expected = (10..20).collect::<Vec<u32>>();
        for method in [Method::Auto, Method::Index, Method::Scan] {
            let hits = super::query(&codes, Some(&index), &query, method).unwrap().sorted_by_row();
            assert_eq!(hits.rows, expected, "{method:?}");
        }
        assert_eq!(super::query(&codes, None, &query, Method::Auto).unwrap().rows, expected);
        assert!(super::query(&codes[1..], Some(&index), &query, Method::Scan).is_err(), "codes of another catalog");
    }
}
