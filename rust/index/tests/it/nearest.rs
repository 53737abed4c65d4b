//! Exact top-k against the naive sort.

use clipbranches_index::{naive, topk};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn top_k_matches_naive(
        dim in 1usize..40,
        rows in 0usize..2000,
        n_queries in 1usize..4,
        k in 1usize..80,
        seed in any::<u64>(),
        levels in 1u8..=255,
    ) {
        let mut state = seed | 1;
        let mut next = move || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state };
        // Few distinct levels make many ties, which the (distance, row) order must break.
        let codes: Vec<u8> = (0..rows * dim).map(|_| (next() % u64::from(levels)) as u8).collect();
        let queries: Vec<u8> = (0..n_queries * dim).map(|_| next() as u8).collect();
        let (d, rows) = topk::nearest(&codes, dim, &queries, k).unwrap();
        for (q, query) in queries.chunks_exact(dim).enumerate() {
            let expected = naive::nearest(&codes, dim, query, k);
            for j in 0..k {
                let got = (d[q * k + j], rows[q * k + j]);
                let want = expected.get(j).copied().unwrap_or((u32::MAX, u64::MAX));
                prop_assert_eq!(got, want);
            }
        }
    }
}

#[test]
fn bad_arguments() {
    assert!(topk::nearest(&[0; 8], 4, &[0; 4], 0).unwrap_err().to_string().contains("k must be"));
    assert!(topk::nearest(&[0; 8], 4, &[0; 3], 1).is_err());
    assert!(topk::nearest(&[0; 7], 4, &[0; 4], 1).is_err());
}
