//! The answer to a box query.

use rayon::prelude::*;

/// Every item inside at least one box, with its counts (8 bytes per hit: a broad query over
/// 10M items answers with nearly every item, so the answer's size is a real cost); ascending
/// rows from the scan, index order from the block index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    /// Catalog rows (positions in the codes; an index holds at most 2^32 - 1 items).
    pub rows: Vec<u32>,
    /// Number of boxes containing each item.
    pub box_counts: Vec<u16>,
    /// Number of distinct groups (ensemble members) with a box containing each item.
    pub group_counts: Vec<u16>,
}

impl Hits {
    /// Number of items hit.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no item was hit.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(crate) fn push(&mut self, row: u32, boxes: u16, groups: u16) {
        self.rows.push(row);
        self.box_counts.push(boxes);
        self.group_counts.push(groups);
    }

    /// The same hits ordered by row.
    #[must_use]
    pub fn sorted_by_row(self) -> Hits {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by_key(|&i| self.rows[i]);
        Hits {
            rows: order.iter().map(|&i| self.rows[i]).collect(),
            box_counts: order.iter().map(|&i| self.box_counts[i]).collect(),
            group_counts: order.iter().map(|&i| self.group_counts[i]).collect(),
        }
    }

    /// Empty hits with room for `n` without reallocating.
    pub(crate) fn with_capacity(n: usize) -> Hits {
        Hits { rows: Vec::with_capacity(n), box_counts: Vec::with_capacity(n), group_counts: Vec::with_capacity(n) }
    }

    /// Concatenates per-task results in task order; each part is copied into its place of the
    /// output in parallel (the hits of a broad query over 10M items are 160 MB).
    pub(crate) fn concat(parts: Vec<Hits>) -> Hits {
        fn column<T: Copy + Default + Send + Sync>(parts: &[Hits], field: fn(&Hits) -> &[T]) -> Vec<T> {
            let total = parts.iter().map(|p| field(p).len()).sum();
            // Zero-filled by calloc (fresh zero pages, no memset), then every slot overwritten.
            let mut out = vec![T::default(); total];
            let mut rest = out.as_mut_slice();
            let mut places = Vec::with_capacity(parts.len());
            for part in parts {
                let (place, tail) = rest.split_at_mut(field(part).len());
                places.push(place);
                rest = tail;
            }
            places.into_par_iter().zip(parts.par_iter()).for_each(|(place, part)| place.copy_from_slice(field(part)));
            out
        }
        if parts.len() == 1 {
            return parts.into_iter().next().unwrap_or_default();
        }
        let (rows, (box_counts, group_counts)) = rayon::join(
            || column(&parts, |p| &p.rows),
            || rayon::join(|| column(&parts, |p| &p.box_counts), || column(&parts, |p| &p.group_counts)),
        );
        Hits { rows, box_counts, group_counts }
    }
}
