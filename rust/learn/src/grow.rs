//! Growing one box on one subset around a seed: the inner step of decision-branch training.
//!
//! The box starts as the seed's point. Dim by dim (in the subset's order), each side is pushed
//! outward over the distinct values of the rows still in the box's region (inside on the dims
//! done so far, free on the rest), at most `min_pts` values per side; the step kept is the one
//! whose inside/outside split has the lowest class-weighted Gini impurity, and the bound goes
//! midway between the last value taken in and the next value left out. A side with nothing
//! left out is open: clamped to 0/255, or (`open_sides = false`, the original's
//! `stop_infinite`) stopped one step past the furthest value taken.

use crate::data::{Sorted, TrainingSet};

/// A grown box: bounds per dim of its subset, and its class-weighted inside mass.
#[derive(Clone, Debug)]
pub(crate) struct Grown {
    pub(crate) lo: Vec<u8>,
    pub(crate) hi: Vec<u8>,
    /// Gini impurity of inside vs outside (scaled: `pq/(p+q)` summed over both sides).
    pub(crate) impurity: f64,
    /// Class-weighted positive and negative mass inside.
    pub(crate) pos: f64,
    pub(crate) neg: f64,
}

/// The state shared by every box of one fit.
pub(crate) struct Grower<'a> {
    data: TrainingSet<'a>,
    /// Per row, its class-weighted mass as a positive (0 for negatives) and as a negative.
    wpos: Vec<f64>,
    wneg: Vec<f64>,
    /// Rows not yet covered by an earlier box (and of non-zero weight).
    pub(crate) active: Vec<bool>,
    /// Per dim, the active rows in ascending value order (rebuilt when a box covers rows).
    active_sorted: Vec<Vec<u32>>,
    /// The region of the box being grown, sorted by the current dim.
    region: Vec<u32>,
    /// `mark[r] == epoch`: row `r` is in the current region (a stamp, so no clearing).
    mark: Vec<u32>,
    epoch: u32,
    /// Active mass per class.
    pub(crate) total: (f64, f64),
    min_pts: usize,
    open_sides: bool,
    candidates: Vec<Candidate>,
    upper: Vec<Candidate>,
    lower_steps: Vec<Option<usize>>,
    upper_steps: Vec<Option<usize>>,
}

/// Scaled Gini impurity of a split with inside mass `(p, q)` out of totals `(tp, tq)`.
fn impurity(p: f64, q: f64, tp: f64, tq: f64) -> f64 {
    let side = |a: f64, b: f64| if a + b > 0.0 { a * b / (a + b) } else { 0.0 };
    side(p, q) + side((tp - p).max(0.0), (tq - q).max(0.0))
}

impl<'a> Grower<'a> {
    pub(crate) fn new(data: TrainingSet<'a>, sorted: &'a Sorted, min_pts: usize, open_sides: bool) -> Self {
        let (mut wp, mut wn) = (0.0, 0.0);
        for (&p, &w) in data.positive.iter().zip(data.weight) {
            if p { wp += w } else { wn += w }
        }
        // Balanced class weights (as scikit-learn's class_weight="balanced"): each class weighs
        // half, however many random negatives there are.
        let total = wp + wn;
        let cw_pos = total / (2.0 * wp);
        let cw_neg = if wn > 0.0 { total / (2.0 * wn) } else { 1.0 };
        let n = data.len();
        let mut wpos = vec![0.0; n];
        let mut wneg = vec![0.0; n];
        for r in 0..n {
            if data.positive[r] {
                wpos[r] = data.weight[r] * cw_pos;
            } else {
                wneg[r] = data.weight[r] * cw_neg;
            }
        }
        let active: Vec<bool> = data.weight.iter().map(|&w| w > 0.0).collect();
        let total = (wpos.iter().sum(), wneg.iter().sum());
        Self {
            data,
            wpos,
            wneg,
            active: active.clone(),
            total,
            min_pts: min_pts.max(1),
            open_sides,
            active_sorted: (0..data.dim()).map(|d| active_rows(sorted.column(d), &active)).collect(),
            region: Vec::with_capacity(n),
            mark: vec![0; n],
            epoch: 0,
            candidates: Vec::with_capacity(64),
            upper: Vec::with_capacity(64),
            lower_steps: Vec::with_capacity(64),
            upper_steps: Vec::with_capacity(64),
        }
    }

    /// Grows the box of `seed` (an active row) on `dims`.
    ///
    /// The region is kept as an explicit row list sorted by the current dim: the first dim
    /// reads its pre-sorted active rows; each later dim keeps, from its own pre-sorted active
    /// rows, those stamped as in the region (a linear pass: faster than sorting the region).
    pub(crate) fn grow(&mut self, seed: usize, dims: &[u16]) -> Grown {
        let (tp, tq) = self.total;
        let mut lo = Vec::with_capacity(dims.len());
        let mut hi = Vec::with_capacity(dims.len());
        let (mut p, mut q) = (0.0, 0.0);
        let mut region = std::mem::take(&mut self.region);
        let active_sorted = std::mem::take(&mut self.active_sorted);
        for (k, &d) in dims.iter().enumerate() {
            let d = usize::from(d);
            let data = self.data;
            let key = |r: &u32| data.value(*r as usize, d);
            if k > 0 {
                let (mark, epoch) = (&self.mark, self.epoch);
                region.clear();
                region.extend(active_sorted[d].iter().copied().filter(|&r| mark[r as usize] == epoch));
            }
            let rows: &[u32] = if k == 0 { &active_sorted[d] } else { &region };
            let v = data.value(seed, d);
            let (at, after) = (rows.partition_point(|r| key(r) < v), rows.partition_point(|r| key(r) <= v));
            (p, q) = (0.0, 0.0);
            for &r in &rows[at..after] {
                p += self.wpos[r as usize];
                q += self.wneg[r as usize];
            }
            let (low, high, mass) = self.push_sides(d, rows, (at, after), (p, q), (tp, tq));
            (p, q) = mass;
            // Rows outside [low, high] on d leave the region.
            let (from, to) = (rows.partition_point(|r| key(r) < low), rows.partition_point(|r| key(r) <= high));
            if k + 1 < dims.len() {
                self.epoch = self.epoch.wrapping_add(1);
                if self.epoch == 0 {
                    self.mark.fill(0);
                    self.epoch = 1;
                }
                for &r in &rows[from..to] {
                    self.mark[r as usize] = self.epoch;
                }
            }
            lo.push(low);
            hi.push(high);
        }
        self.region = region;
        self.active_sorted = active_sorted;
        Grown { lo, hi, impurity: impurity(p, q, tp, tq), pos: p, neg: q }
    }

    /// Pushes both sides of dim `d` outward from the seed's value `v`, with `base` the mass
    /// inside before the push; returns the bounds and the mass inside after it.
    ///
    /// The two sides are chosen jointly: pushing one side alone, before the other side's
    /// positives are in, can prefer swallowing a negative (it purifies the outside), which a
    /// joint choice never does. Only boundary steps compete (a step whose last value holds a
    /// positive and whose next holds a negative, or is the last): for a concave impurity the
    /// best split lies on one (Fayyad and Irani, 1992), and there are few of them.
    ///
    /// `rows` is the region sorted by dim `d`, `rows[at..after]` the rows at the seed's value.
    fn push_sides(
        &mut self,
        d: usize,
        rows: &[u32],
        (at, after): (usize, usize),
        base: (f64, f64),
        totals: (f64, f64),
    ) -> (u8, u8, (f64, f64)) {
        let v = self.data.value(rows[at] as usize, d);
        let mut lower = std::mem::take(&mut self.candidates);
        let mut upper = std::mem::take(&mut self.upper);
        let lower_beyond = self.walk(d, rows[..at].iter().rev(), &mut lower);
        let upper_beyond = self.walk(d, rows[after..].iter(), &mut upper);
        let lower_steps = boundary_steps(&lower, &mut self.lower_steps);
        let upper_steps = boundary_steps(&upper, &mut self.upper_steps);
        let (tp, tq) = totals;
        // (impurity, lower step, upper step); None = no push; ties keep the smaller pushes.
        let mut best = (f64::INFINITY, None::<usize>, None::<usize>);
        for &i in lower_steps {
            let (lp, lq) = i.map_or((0.0, 0.0), |i| (lower[i].1, lower[i].2));
            for &j in upper_steps {
                let (up, uq) = j.map_or((0.0, 0.0), |j| (upper[j].1, upper[j].2));
                let imp = impurity(base.0 + lp + up, base.1 + lq + uq, tp, tq);
                if imp < best.0 {
                    best = (imp, i, j);
                }
            }
        }
        let (_, i, j) = best;
        let low = self.bound(v, &lower, i, lower_beyond, Side::Lower);
        let high = self.bound(v, &upper, j, upper_beyond, Side::Upper);
        let mass = |c: &[(u8, f64, f64, bool, bool)], k: Option<usize>| k.map_or((0.0, 0.0), |k| (c[k].1, c[k].2));
        let ((lp, lq), (up, uq)) = (mass(&lower, i), mass(&upper, j));
        self.candidates = lower;
        self.upper = upper;
        (low, high, (base.0 + lp + up, base.1 + lq + uq))
    }

    /// The bound of one side after taking steps `0..=step` of `candidates`.
    fn bound(&self, v: u8, candidates: &[Candidate], step: Option<usize>, beyond: Option<u8>, side: Side) -> u8 {
        let taken = step.map_or(v, |k| candidates[k].0);
        let left_out = candidates.get(step.map_or(0, |k| k + 1)).map(|c| c.0).or(beyond);
        match (side, left_out) {
            // Midway, rounded so that the value left out stays out.
            (Side::Lower, Some(out)) => u8::try_from((u16::from(taken) + u16::from(out)).div_ceil(2)).unwrap_or(taken),
            (Side::Upper, Some(out)) => u8::try_from(u16::midpoint(u16::from(taken), u16::from(out))).unwrap_or(taken),
            (Side::Lower, None) if self.open_sides => 0,
            (Side::Upper, None) if self.open_sides => u8::MAX,
            (Side::Lower, None) => taken.saturating_sub(1),
            (Side::Upper, None) => taken.saturating_add(1),
        }
    }

    /// Walks `rows` (one side of dim `d`, nearest value first), collecting up to `min_pts`
    /// distinct values of region rows, each with the mass pushed in once it is taken and
    /// whether it holds positive / negative mass; returns the first value beyond the last
    /// candidate if the walk stopped at `min_pts`.
    fn walk<'r>(&self, d: usize, rows: impl Iterator<Item = &'r u32>, candidates: &mut Vec<Candidate>) -> Option<u8> {
        candidates.clear();
        let (mut pos, mut neg) = (0.0, 0.0);
        let mut current: Option<(u8, f64, f64)> = None; // value and the mass before it
        for &row in rows {
            let row = row as usize;
            let value = self.data.value(row, d);
            if current.is_none_or(|c| c.0 != value) {
                if let Some((taken, pos0, neg0)) = current {
                    candidates.push((taken, pos, neg, pos > pos0, neg > neg0));
                }
                if candidates.len() == self.min_pts {
                    return Some(value);
                }
                current = Some((value, pos, neg));
            }
            pos += self.wpos[row];
            neg += self.wneg[row];
        }
        if let Some((taken, pos0, neg0)) = current {
            candidates.push((taken, pos, neg, pos > pos0, neg > neg0));
        }
        None
    }

    /// Marks every active row inside the box (`dims`, `lo`, `hi`) as covered.
    pub(crate) fn cover(&mut self, dims: &[u16], lo: &[u8], hi: &[u8]) {
        for r in 0..self.data.len() {
            if self.active[r] && inside(self.data.row(r), dims, lo, hi) {
                self.active[r] = false;
                self.total.0 -= self.wpos[r];
                self.total.1 -= self.wneg[r];
            }
        }
        self.total = (self.total.0.max(0.0), self.total.1.max(0.0));
        let active = &self.active;
        for rows in &mut self.active_sorted {
            rows.retain(|&r| active[r as usize]);
        }
    }
}

/// One step of a side: the value taken, the mass pushed in once it is taken (cumulative), and
/// whether the value's rows hold positive / negative mass.
type Candidate = (u8, f64, f64, bool, bool);

/// The steps worth trying on one side: no push, and each boundary step.
fn boundary_steps<'s>(candidates: &[Candidate], steps: &'s mut Vec<Option<usize>>) -> &'s [Option<usize>] {
    steps.clear();
    steps.push(None);
    for (k, c) in candidates.iter().enumerate() {
        let next_has_negative = candidates.get(k + 1).is_none_or(|n| n.4);
        if c.3 && next_has_negative {
            steps.push(Some(k));
        }
    }
    steps
}

#[derive(Clone, Copy)]
enum Side {
    Lower,
    Upper,
}

/// The rows of a pre-sorted column that are active, in the same order.
fn active_rows(column: &[u32], active: &[bool]) -> Vec<u32> {
    column.iter().copied().filter(|&r| active[r as usize]).collect()
}

/// Whether `row` (one item's codes) is inside the box (`dims`, `lo`, `hi`).
pub(crate) fn inside(row: &[u8], dims: &[u16], lo: &[u8], hi: &[u8]) -> bool {
    dims.iter().zip(lo).zip(hi).all(|((&d, &l), &h)| (l..=h).contains(&row[usize::from(d)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grower<'a>(data: TrainingSet<'a>, sorted: &'a Sorted, min_pts: usize, open: bool) -> Grower<'a> {
        Grower::new(data, sorted, min_pts, open)
    }

    /// One dim: positives at 10, 12, 14, negatives at 5 and 20. The best box takes the three
    /// positives and puts its bounds midway to the negatives: [8, 17].
    #[test]
    fn bounds_go_midway_to_the_first_negative() {
        let codes = [10u8, 12, 14, 5, 20];
        let labels = [true, true, true, false, false];
        let w = [1.0; 5];
        let data = TrainingSet::new(&codes, 1, &labels, &w).unwrap();
        let sorted = Sorted::new(&data);
        let mut g = grower(data, &sorted, 10, true);
        let b = g.grow(1, &[0]);
        assert_eq!((b.lo[0], b.hi[0]), (8, 17));
        assert!(b.impurity.abs() < 1e-12);
    }

    /// Nothing left out above the positives: the upper side is open (255), or one step past
    /// the furthest positive when sides are not left open.
    #[test]
    fn sides_without_anything_beyond_are_open_or_stop_past_the_last_positive() {
        let codes = [10u8, 12, 14, 5];
        let labels = [true, true, true, false];
        let w = [1.0; 4];
        let data = TrainingSet::new(&codes, 1, &labels, &w).unwrap();
        let sorted = Sorted::new(&data);
        let open = grower(data, &sorted, 10, true).grow(0, &[0]);
        assert_eq!((open.lo[0], open.hi[0]), (8, 255));
        let closed = grower(data, &sorted, 10, false).grow(0, &[0]);
        assert_eq!((closed.lo[0], closed.hi[0]), (8, 15));
    }

    /// `min_pts` limits how far a side may go: with 1 step, only the nearest value is tried.
    #[test]
    fn min_pts_limits_each_side() {
        let codes = [10u8, 11, 12, 13, 30];
        let labels = [true, true, true, true, false];
        let w = [1.0; 5];
        let data = TrainingSet::new(&codes, 1, &labels, &w).unwrap();
        let sorted = Sorted::new(&data);
        let b = grower(data, &sorted, 1, true).grow(0, &[0]);
        assert_eq!((b.lo[0], b.hi[0]), (0, 11), "upper: took 11, left 12 out: midway = 11");
    }

    /// Two dims: the second dim only sees rows inside the first dim's bounds.
    #[test]
    fn later_dims_see_only_the_region() {
        // Rows: (x, y). Positives near (100, 100); a negative at (100, 150) and one at (150, 100).
        let codes = [100u8, 100, 102, 104, 98, 96, 100, 150, 150, 100];
        let labels = [true, true, true, false, false];
        let w = [1.0; 5];
        let data = TrainingSet::new(&codes, 2, &labels, &w).unwrap();
        let sorted = Sorted::new(&data);
        let b = grower(data, &sorted, 10, true).grow(0, &[0, 1]);
        assert!(b.lo[0] <= 98 && b.hi[0] >= 102 && b.hi[0] < 150, "{b:?}");
        assert!(b.lo[1] <= 96 && b.hi[1] >= 104 && b.hi[1] < 150, "{b:?}");
        assert!(b.neg.abs() < 1e-12);
    }
}
