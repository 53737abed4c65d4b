//! Box queries: block index == fused scan == naive loop, for rows and both counts.

use clipbranches_index::{BlockIndex, BoxQuery, BoxSet, BoxSpec, BuildOptions, Method, method, naive, scan};
use proptest::prelude::*;

/// A stand-in catalog checksum.
const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Clustered random codes, so that blocks get tight bounds and every pruning branch runs.
fn codes_strategy() -> impl Strategy<Value = (usize, Vec<u8>)> {
    (1usize..12, 0usize..3000, any::<u64>()).prop_map(|(dim, rows, seed)| {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let centres: Vec<u8> = (0..8 * dim).map(|_| next() as u8).collect();
        let mut codes = Vec::with_capacity(rows * dim);
        for _ in 0..rows {
            let c = (next() % 8) as usize;
            for d in 0..dim {
                let noise = (next() % 41) as i32 - 20;
                codes.push((i32::from(centres[c * dim + d]) + noise).clamp(0, 255) as u8);
            }
        }
        (dim, codes)
    })
}

fn box_strategy(dim: usize) -> impl Strategy<Value = BoxSpec> {
    let dims = proptest::sample::subsequence((0..dim as u16).collect::<Vec<_>>(), 1..=dim.min(8));
    (dims, any::<u64>(), 0u32..5).prop_map(|(dims, seed, group)| {
        let mut lo = Vec::new();
        let mut hi = Vec::new();
        for (k, _) in dims.iter().enumerate() {
            let bits = seed.rotate_left(k as u32 * 16);
            // Full range, a single value, empty-ish and ordinary boxes all appear.
            let (a, b) = match bits % 5 {
                0 => (0, 255),
                1 => {
                    let v = (bits >> 8) as u8;
                    (v, v)
                }
                _ => {
                    let x = (bits >> 8) as u8;
                    let y = (bits >> 24) as u8;
                    (x.min(y), x.max(y))
                }
            };
            lo.push(a);
            hi.push(b);
        }
        BoxSpec { dims, lo, hi, group }
    })
}

fn case() -> impl Strategy<Value = (usize, Vec<u8>, Vec<BoxSpec>, usize)> {
    codes_strategy().prop_flat_map(|(dim, codes)| {
        (
            Just(dim),
            Just(codes),
            proptest::collection::vec(box_strategy(dim), 1..40),
            prop_oneof![Just(128usize), Just(256), Just(512)],
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn index_scan_and_naive_agree((dim, codes, boxes, block_items) in case()) {
        let query = BoxQuery::new(dim, boxes).unwrap();
        let expected = naive::query(&codes, &query);
        prop_assert_eq!(&scan::query(&codes, &query).unwrap(), &expected);
        let index = BlockIndex::build(&codes, dim, ZERO, BuildOptions { block_items }).unwrap();
        prop_assert_eq!(&index.query(&query).unwrap().sorted_by_row(), &expected);
    }

    #[test]
    fn a_box_set_round_trips_and_every_method_agrees_with_naive((dim, codes, boxes, block_items) in case()) {
        let set = BoxSet::new(dim, boxes.clone()).unwrap();
        let csr = set.to_csr();
        let wide = |v: &[u8]| v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>();
        let dims: Vec<i64> = csr.dims.iter().map(|&d| i64::from(d)).collect();
        let groups: Vec<i64> = csr.groups.iter().map(|&g| i64::from(g)).collect();
        let again = BoxSet::from_csr(Some(dim), &csr.offsets, &dims, &wide(&csr.lo), &wide(&csr.hi), &groups).unwrap();
        prop_assert_eq!(again.boxes(), &boxes[..]);
        prop_assert_eq!(again.to_csr(), csr);
        let expected = naive::query(&codes, set.query().unwrap());
        let index = BlockIndex::build(&codes, dim, ZERO, BuildOptions { block_items }).unwrap();
        for m in [Method::Auto, Method::Index, Method::Scan] {
            let hits = method::query(&codes, Some(&index), set.query().unwrap(), m).unwrap().sorted_by_row();
            prop_assert_eq!(&hits, &expected, "{:?}", m);
        }
        prop_assert_eq!(&method::query(&codes, None, set.query().unwrap(), Method::Auto).unwrap(), &expected);
    }
}

#[test]
fn index_orders_every_item_once() {
    let dim = 3;
    let codes: Vec<u8> = (0..3000u32).flat_map(|i| [(i % 251) as u8, (i % 7) as u8, (i / 13) as u8]).collect();
    let index = BlockIndex::build(&codes, dim, ZERO, BuildOptions { block_items: 128 }).unwrap();
    let full = BoxQuery::new(dim, vec![BoxSpec { dims: vec![0], lo: vec![0], hi: vec![255], group: 0 }]).unwrap();
    let hits = index.query(&full).unwrap().sorted_by_row();
    assert!(hits.rows == (0..3000u32).collect::<Vec<_>>(), "every item once, ascending");
    assert_eq!(index.blocks(), 3000usize.div_ceil(128));
}

#[test]
fn bad_build_options_and_dims_are_errors() {
    assert!(BlockIndex::build(&[0; 10], 3, ZERO, BuildOptions::default()).is_err());
    assert!(BlockIndex::build(&[0; 12], 3, ZERO, BuildOptions { block_items: 100 }).is_err());
    let index = BlockIndex::build(&[0; 12], 3, ZERO, BuildOptions::default()).unwrap();
    let other = BoxQuery::new(4, vec![BoxSpec { dims: vec![0], lo: vec![0], hi: vec![1], group: 0 }]).unwrap();
    assert!(index.query(&other).unwrap_err().to_string().contains("dim 4"));
}
