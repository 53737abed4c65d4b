//! Box queries: validated, and normalised into the forms the engines want.

use crate::error::{IndexError, IndexResult};

/// Most boxes one query may hold (per-item counters are 16-bit).
pub const MAX_BOXES: usize = u16::MAX as usize;

/// One axis-aligned box on a subset of the dimensions, with inclusive bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxSpec {
    /// The constrained dimensions (distinct, each `< dim`).
    pub dims: Vec<u16>,
    /// Lower bound per dimension of `dims` (inclusive).
    pub lo: Vec<u8>,
    /// Upper bound per dimension of `dims` (inclusive).
    pub hi: Vec<u8>,
    /// The ensemble member (model) this box belongs to.
    pub group: u32,
}

/// A validated list of boxes over codes of width `dim`.
///
/// Boxes are kept sorted by group (stable), which lets every engine count distinct groups per
/// item with one "last group seen" slot instead of a set.
#[derive(Clone, Debug)]
pub struct BoxQuery {
    dim: usize,
    boxes: Vec<BoxSpec>,
    /// Per box, the full-width bounds: `lo` and `hi - lo` over all `dim` dims (0 and 255
    /// where the box does not constrain), for the row-major scan.
    full_lo: Vec<u8>,
    full_width: Vec<u8>,
}

impl BoxQuery {
    /// Validates `boxes` against codes of width `dim`.
    pub fn new(dim: usize, mut boxes: Vec<BoxSpec>) -> IndexResult<Self> {
        if boxes.is_empty() {
            return Err(IndexError::InvalidQuery("the box list is empty".into()));
        }
        if boxes.len() > MAX_BOXES {
            return Err(IndexError::InvalidQuery(format!("{} boxes; at most {MAX_BOXES} per query", boxes.len())));
        }
        for (i, b) in boxes.iter().enumerate() {
            validate(i, b, dim)?;
        }
        boxes.sort_by_key(|b| b.group);
        let mut full_lo = vec![0u8; boxes.len() * dim];
        let mut full_width = vec![255u8; boxes.len() * dim];
        for (i, b) in boxes.iter().enumerate() {
            for ((&d, &lo), &hi) in b.dims.iter().zip(&b.lo).zip(&b.hi) {
                full_lo[i * dim + d as usize] = lo;
                full_width[i * dim + d as usize] = hi - lo;
            }
        }
        Ok(Self { dim, boxes, full_lo, full_width })
    }

    /// Builds a query from the compressed form that crosses the Python boundary: box `i` has
    /// dims `dims[offsets[i]..offsets[i + 1]]` with the bounds at the same positions of `lo`
    /// and `hi`, and group `groups[i]`.
    pub fn from_csr(
        dim: usize,
        offsets: &[i64],
        dims: &[u16],
        lo: &[u8],
        hi: &[u8],
        groups: &[u32],
    ) -> IndexResult<Self> {
        let bad = |what: String| Err(IndexError::InvalidQuery(what));
        if offsets.len() != groups.len() + 1 {
            return bad(format!("{} offsets for {} boxes (need one more than boxes)", offsets.len(), groups.len()));
        }
        if lo.len() != dims.len() || hi.len() != dims.len() {
            return bad(format!("{} dims but {} lower and {} upper bounds", dims.len(), lo.len(), hi.len()));
        }
        let mut boxes = Vec::with_capacity(groups.len());
        for (i, (w, &group)) in offsets.windows(2).zip(groups).enumerate() {
            let (Ok(start), Ok(end)) = (usize::try_from(w[0]), usize::try_from(w[1])) else {
                return bad(format!("box {i}: negative offset"));
            };
            if start > end || end > dims.len() {
                return bad(format!("box {i}: offsets {start}..{end} do not lie within the {} dims", dims.len()));
            }
            boxes.push(BoxSpec {
                dims: dims[start..end].to_vec(),
                lo: lo[start..end].to_vec(),
                hi: hi[start..end].to_vec(),
                group,
            });
        }
        Self::new(dim, boxes)
    }

    /// Code width the query was validated for.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The boxes, sorted by group.
    #[must_use]
    pub fn boxes(&self) -> &[BoxSpec] {
        &self.boxes
    }

    /// Full-width lower bounds of box `i` (`dim` bytes).
    #[must_use]
    pub fn full_lo(&self, i: usize) -> &[u8] {
        &self.full_lo[i * self.dim..(i + 1) * self.dim]
    }

    /// Full-width `hi - lo` of box `i` (`dim` bytes).
    #[must_use]
    pub fn full_width(&self, i: usize) -> &[u8] {
        &self.full_width[i * self.dim..(i + 1) * self.dim]
    }
}

fn validate(i: usize, b: &BoxSpec, dim: usize) -> IndexResult<()> {
    let bad = |what: String| Err(IndexError::InvalidQuery(format!("box {i}: {what}")));
    if b.dims.is_empty() {
        return bad("constrains no dimension".into());
    }
    if b.lo.len() != b.dims.len() || b.hi.len() != b.dims.len() {
        return bad(format!("{} dims but {} lower and {} upper bounds", b.dims.len(), b.lo.len(), b.hi.len()));
    }
    let mut seen = vec![false; dim];
    for (k, &d) in b.dims.iter().enumerate() {
        let d = d as usize;
        if d >= dim {
            return bad(format!("dimension {d} is out of range for codes of width {dim}"));
        }
        if std::mem::replace(&mut seen[d], true) {
            return bad(format!("dimension {d} appears twice"));
        }
        if b.lo[k] > b.hi[k] {
            return bad(format!("on dimension {d} lower bound {} > upper bound {}", b.lo[k], b.hi[k]));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dims: &[u16], lo: &[u8], hi: &[u8]) -> BoxSpec {
        BoxSpec { dims: dims.to_vec(), lo: lo.to_vec(), hi: hi.to_vec(), group: 0 }
    }

    #[test]
    fn rejects_each_bad_box() {
        let cases = [
            (spec(&[0], &[5], &[4]), "lower bound 5 > upper bound 4"),
            (spec(&[32], &[0], &[1]), "dimension 32 is out of range"),
            (spec(&[1, 1], &[0, 0], &[1, 1]), "appears twice"),
            (spec(&[], &[], &[]), "constrains no dimension"),
            (spec(&[0, 1], &[0], &[1, 1]), "2 dims but 1 lower"),
        ];
        for (b, message) in cases {
            let err = BoxQuery::new(32, vec![b]).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
        assert!(BoxQuery::new(32, vec![]).unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn full_width_bounds_leave_other_dims_open() {
        let mut b = spec(&[2], &[10], &[20]);
        b.group = 3;
        let q = BoxQuery::new(4, vec![b, spec(&[0], &[1], &[1])]).unwrap();
        assert_eq!(q.boxes()[0].group, 0, "sorted by group");
        assert_eq!(q.full_lo(1), &[0, 0, 10, 0]);
        assert_eq!(q.full_width(1), &[255, 255, 10, 255]);
    }
}
