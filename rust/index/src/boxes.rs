//! Box queries: validated, and normalised into the forms the engines want.
//!
//! - [`BoxSet`]: a model's boxes as given (any number, in their order, each box valid for codes
//!   of its width), with the query over codes of that width built once: what a fitted learner
//!   holds and what crosses the Python boundary (`_core.BoxSet`).
//! - [`BoxQuery`]: 1 to [`MAX_BOXES`] boxes sorted by group, with the full-width bounds the
//!   scan wants: what every engine takes.

use std::borrow::Cow;

use crate::error::{IndexError, IndexResult};

/// Most boxes one query may hold (per-item counters are 16-bit).
pub const MAX_BOXES: usize = u16::MAX as usize;
/// Largest group number a box may carry.
pub const MAX_GROUP: u32 = u32::MAX - 1;

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

/// Boxes in compressed form: box `i` constrains `dims[offsets[i]..offsets[i + 1]]` with the
/// bounds at the same positions of `lo` and `hi`, and belongs to group `groups[i]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsrBoxes {
    /// `len + 1` offsets into `dims`, `lo` and `hi`, rising from 0 to `dims.len()`.
    pub offsets: Vec<i64>,
    /// The constrained dimensions of every box, box after box.
    pub dims: Vec<u16>,
    /// Lower bounds, one per entry of `dims`.
    pub lo: Vec<u8>,
    /// Upper bounds, one per entry of `dims`.
    pub hi: Vec<u8>,
    /// Group of each box.
    pub groups: Vec<u32>,
}

/// A model's boxes: each valid for codes of width `dim`, kept in the order given, with the
/// query over codes of that width built once.
///
/// The set may be empty or hold more than [`MAX_BOXES`] boxes (a learner may find none); such
/// a set cannot be queried, and [`BoxSet::query`] says why.
#[derive(Clone, Debug)]
pub struct BoxSet {
    dim: usize,
    boxes: Vec<BoxSpec>,
    groups: usize,
    /// The query over codes of width `dim`, or why there is none (no boxes, too many).
    query: Result<BoxQuery, String>,
}

impl BoxSet {
    /// Validates every box against codes of width `dim` (dims distinct and `< dim`,
    /// `lo <= hi`, at least one dim, as many bounds as dims).
    pub fn new(dim: usize, boxes: Vec<BoxSpec>) -> IndexResult<Self> {
        for (i, b) in boxes.iter().enumerate() {
            validate(i, b, dim)?;
        }
        let mut groups: Vec<u32> = boxes.iter().map(|b| b.group).collect();
        groups.sort_unstable();
        groups.dedup();
        let query = check_count(boxes.len()).map(|()| BoxQuery::sorted(dim, boxes.clone()));
        Ok(Self { dim, boxes, groups: groups.len(), query })
    }

    /// Builds a set from the compressed form with integers as wide as Python's (what
    /// `_core.BoxSet.from_arrays` receives), checking that every value fits its field: dims
    /// in `0..=65535`, bounds in `0..=255`, groups in `0..=MAX_GROUP`, offsets rising from 0
    /// to the number of dims. `dim` defaults to one more than the largest dimension used.
    pub fn from_csr(
        dim: Option<usize>,
        offsets: &[i64],
        dims: &[i64],
        lo: &[i64],
        hi: &[i64],
        groups: &[i64],
    ) -> IndexResult<Self> {
        let bad = |what: String| Err(IndexError::InvalidQuery(what));
        if offsets.len() != groups.len() + 1 {
            return bad(format!("{} offsets for {} boxes (need one more than boxes)", offsets.len(), groups.len()));
        }
        if lo.len() != dims.len() || hi.len() != dims.len() {
            return bad(format!("{} dims but {} lower and {} upper bounds", dims.len(), lo.len(), hi.len()));
        }
        let n_dims = i64::try_from(dims.len()).unwrap_or(i64::MAX);
        if offsets[0] != 0 || offsets[offsets.len() - 1] != n_dims {
            return bad(format!(
                "offsets must rise from 0 to the number of dims ({}), got {}..{}",
                dims.len(),
                offsets[0],
                offsets[offsets.len() - 1]
            ));
        }
        let mut boxes = Vec::with_capacity(groups.len());
        for (i, (w, &group)) in offsets.windows(2).zip(groups).enumerate() {
            let bad = |what: String| Err(IndexError::InvalidQuery(format!("box {i}: {what}")));
            if w[0] > w[1] || w[1] > n_dims {
                return bad(format!("offsets {}..{} do not lie within the {} dims", w[0], w[1], dims.len()));
            }
            let (start, end) = (w[0] as usize, w[1] as usize);
            let group = match u32::try_from(group) {
                Ok(g) if g <= MAX_GROUP => g,
                _ => return bad(format!("group must lie in 0..{MAX_GROUP}, got {group}")),
            };
            boxes.push(BoxSpec {
                dims: narrow(i, "dims", &dims[start..end], u16::MAX.into())?,
                lo: narrow(i, "lo", &lo[start..end], u8::MAX.into())?,
                hi: narrow(i, "hi", &hi[start..end], u8::MAX.into())?,
                group,
            });
        }
        let dim = dim.unwrap_or_else(|| boxes.iter().flat_map(|b| &b.dims).max().map_or(0, |&d| usize::from(d) + 1));
        Self::new(dim, boxes)
    }

    /// The boxes in compressed form, in the order given.
    #[must_use]
    pub fn to_csr(&self) -> CsrBoxes {
        let total = self.boxes.iter().map(|b| b.dims.len()).sum();
        let mut csr = CsrBoxes {
            offsets: Vec::with_capacity(self.boxes.len() + 1),
            dims: Vec::with_capacity(total),
            lo: Vec::with_capacity(total),
            hi: Vec::with_capacity(total),
            groups: Vec::with_capacity(self.boxes.len()),
        };
        csr.offsets.push(0);
        for b in &self.boxes {
            csr.dims.extend_from_slice(&b.dims);
            csr.lo.extend_from_slice(&b.lo);
            csr.hi.extend_from_slice(&b.hi);
            csr.groups.push(b.group);
            csr.offsets.push(i64::try_from(csr.dims.len()).unwrap_or(i64::MAX));
        }
        csr
    }

    /// Code width the boxes were validated for.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of boxes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    /// Whether the set holds no box.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// Number of distinct groups among the boxes (the most an item's group count can reach).
    #[must_use]
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The boxes, in the order given.
    #[must_use]
    pub fn boxes(&self) -> &[BoxSpec] {
        &self.boxes
    }

    /// The query over codes of width [`BoxSet::dim`] (built once).
    pub fn query(&self) -> IndexResult<&BoxQuery> {
        self.query.as_ref().map_err(|why| IndexError::InvalidQuery(why.clone()))
    }

    /// The query over codes of width `dim`: the one built once when `dim` is the set's width,
    /// else one built now (its boxes checked against the other width).
    pub fn query_for(&self, dim: usize) -> IndexResult<Cow<'_, BoxQuery>> {
        if dim == self.dim {
            self.query().map(Cow::Borrowed)
        } else {
            BoxQuery::new(dim, self.boxes.clone()).map(Cow::Owned)
        }
    }
}

/// Narrows box `i`'s wide integers to a field's type, naming the field when one does not fit.
fn narrow<T: TryFrom<i64>>(i: usize, field: &str, values: &[i64], max: i64) -> IndexResult<Vec<T>> {
    values
        .iter()
        .map(|&v| {
            T::try_from(v)
                .map_err(|_| IndexError::InvalidQuery(format!("box {i}: {field} must lie in 0..{max}, got {v}")))
        })
        .collect()
}

/// A query holds 1 to [`MAX_BOXES`] boxes; else, why not.
fn check_count(boxes: usize) -> Result<(), String> {
    if boxes == 0 {
        return Err("the box list is empty".into());
    }
    if boxes > MAX_BOXES {
        return Err(format!("{boxes} boxes; at most {MAX_BOXES} per query"));
    }
    Ok(())
}

/// A validated list of 1 to [`MAX_BOXES`] boxes over codes of width `dim`.
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
    pub fn new(dim: usize, boxes: Vec<BoxSpec>) -> IndexResult<Self> {
        check_count(boxes.len()).map_err(IndexError::InvalidQuery)?;
        for (i, b) in boxes.iter().enumerate() {
            validate(i, b, dim)?;
        }
        Ok(Self::sorted(dim, boxes))
    }

    /// Sorts valid boxes by group (stable) and derives their full-width bounds.
    fn sorted(dim: usize, mut boxes: Vec<BoxSpec>) -> Self {
        boxes.sort_by_key(|b| b.group);
        let mut full_lo = vec![0u8; boxes.len() * dim];
        let mut full_width = vec![255u8; boxes.len() * dim];
        for (i, b) in boxes.iter().enumerate() {
            for ((&d, &lo), &hi) in b.dims.iter().zip(&b.lo).zip(&b.hi) {
                full_lo[i * dim + d as usize] = lo;
                full_width[i * dim + d as usize] = hi - lo;
            }
        }
        Self { dim, boxes, full_lo, full_width }
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

    fn wide(csr: &CsrBoxes) -> [Vec<i64>; 5] {
        [
            csr.offsets.clone(),
            csr.dims.iter().map(|&v| i64::from(v)).collect(),
            csr.lo.iter().map(|&v| i64::from(v)).collect(),
            csr.hi.iter().map(|&v| i64::from(v)).collect(),
            csr.groups.iter().map(|&v| i64::from(v)).collect(),
        ]
    }

    #[test]
    fn a_set_keeps_its_order_counts_groups_and_round_trips() {
        let mut late = spec(&[3, 1], &[5, 6], &[7, 8]);
        late.group = 4;
        let set = BoxSet::new(8, vec![late, spec(&[0], &[1], &[2]), spec(&[2], &[0], &[255])]).unwrap();
        assert_eq!((set.len(), set.groups(), set.dim()), (3, 2, 8));
        assert_eq!(set.boxes()[0].group, 4, "the order given");
        assert_eq!(set.query().unwrap().boxes()[0].group, 0, "the query's sorted by group");
        let csr = set.to_csr();
        assert_eq!(csr.offsets, [0, 2, 3, 4]);
        assert_eq!(csr.dims, [3, 1, 0, 2]);
        let [offsets, dims, lo, hi, groups] = wide(&csr);
        let again = BoxSet::from_csr(Some(8), &offsets, &dims, &lo, &hi, &groups).unwrap();
        assert_eq!(again.boxes(), set.boxes());
        let inferred = BoxSet::from_csr(None, &offsets, &dims, &lo, &hi, &groups).unwrap();
        assert_eq!(inferred.dim(), 4, "one more than the largest dim");
    }

    #[test]
    fn a_set_is_queried_at_its_width_or_checked_against_another() {
        let set = BoxSet::new(8, vec![spec(&[5], &[1], &[2])]).unwrap();
        assert!(matches!(set.query_for(8).unwrap(), Cow::Borrowed(_)));
        assert_eq!(set.query_for(16).unwrap().dim(), 16);
        let err = set.query_for(4).unwrap_err().to_string();
        assert!(err.contains("box 0: dimension 5 is out of range for codes of width 4"), "{err}");
    }

    #[test]
    fn empty_and_oversized_sets_exist_but_cannot_be_queried() {
        let empty = BoxSet::new(4, vec![]).unwrap();
        assert_eq!((empty.len(), empty.groups()), (0, 0));
        assert!(empty.query().unwrap_err().to_string().contains("the box list is empty"));
        assert!(empty.query_for(8).unwrap_err().to_string().contains("the box list is empty"));
        let many = BoxSet::new(4, vec![spec(&[0], &[0], &[1]); MAX_BOXES + 1]).unwrap();
        assert!(many.query().unwrap_err().to_string().contains("65536 boxes; at most 65535 per query"));
        assert!(BoxSet::new(4, vec![spec(&[0], &[0], &[1]); MAX_BOXES]).unwrap().query().is_ok());
    }

    #[test]
    fn wide_values_that_do_not_fit_are_named() {
        let ok =
            |dims: i64, lo: i64, hi: i64, group: i64| BoxSet::from_csr(None, &[0, 1], &[dims], &[lo], &[hi], &[group]);
        assert!(ok(1, 0, 2, 0).is_ok());
        let cases = [
            (ok(70_000, 0, 2, 0), "box 0: dims must lie in 0..65535, got 70000"),
            (ok(1, -1, 2, 0), "box 0: lo must lie in 0..255, got -1"),
            (ok(1, 0, 256, 0), "box 0: hi must lie in 0..255, got 256"),
            (ok(1, 0, 2, -1), "box 0: group must lie in 0..4294967294, got -1"),
            (ok(1, 0, 2, 1 << 32), "group must lie"),
            (ok(1, 5, 4, 0), "lower bound 5 > upper bound 4"),
            (BoxSet::from_csr(Some(1), &[0, 1], &[1], &[0], &[2], &[0]), "dimension 1 is out of range"),
            (BoxSet::from_csr(None, &[0, 1], &[1], &[0], &[2], &[0, 1]), "2 offsets for 2 boxes"),
            (BoxSet::from_csr(None, &[0, 1], &[1], &[0, 1], &[2], &[0]), "1 dims but 2 lower and 1 upper"),
            (BoxSet::from_csr(None, &[1, 1], &[1], &[0], &[2], &[0]), "offsets must rise from 0"),
            (
                BoxSet::from_csr(None, &[0, 2, 1], &[1], &[0], &[2], &[0, 0]),
                "box 0: offsets 0..2 do not lie within the 1 dims",
            ),
            (BoxSet::from_csr(None, &[0, 0], &[], &[], &[], &[0]), "box 0: constrains no dimension"),
        ];
        for (result, message) in cases {
            let err = result.unwrap_err().to_string();
            assert!(err.contains(message), "{err} does not say {message}");
        }
    }
}
