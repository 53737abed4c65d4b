//! The answer to a box query.

/// Every item inside at least one box, ascending by id, with its counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    /// Item ids (catalog rows), ascending.
    pub ids: Vec<u64>,
    /// Number of boxes containing each item.
    pub box_counts: Vec<u32>,
    /// Number of distinct groups (ensemble members) with a box containing each item.
    pub group_counts: Vec<u32>,
}

impl Hits {
    /// Number of items hit.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no item was hit.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn push(&mut self, id: u64, boxes: u32, groups: u32) {
        self.ids.push(id);
        self.box_counts.push(boxes);
        self.group_counts.push(groups);
    }

    /// Concatenates per-chunk results that are each ascending and in ascending chunk order.
    pub(crate) fn concat(parts: Vec<Hits>) -> Hits {
        let total = parts.iter().map(Hits::len).sum();
        let mut out = Hits {
            ids: Vec::with_capacity(total),
            box_counts: Vec::with_capacity(total),
            group_counts: Vec::with_capacity(total),
        };
        for part in parts {
            out.ids.extend(part.ids);
            out.box_counts.extend(part.box_counts);
            out.group_counts.extend(part.group_counts);
        }
        out
    }
}
