use clipbranches_index::{BlockIndex, BoxQuery, BuildOptions, naive, scan};
use clipbranches_learn::{
    BranchParams, EnsembleParams, LearnError, Rng, Subsets, TrainingSet, fit_branch, fit_ensemble,
};
use proptest::prelude::*;

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `rows` random codes of width `dim` around 6 centres; label = centre 0.
fn clustered(dim: usize, rows: usize, seed: u64) -> (Vec<u8>, Vec<bool>) {
    let mut rng = Rng::new(seed, 99);
    let centres: Vec<u8> = (0..6 * dim).map(|_| rng.next_u64() as u8).collect();
    let mut codes = Vec::with_capacity(rows * dim);
    let mut labels = Vec::with_capacity(rows);
    for _ in 0..rows {
        let c = rng.below(6);
        labels.push(c == 0);
        for d in 0..dim {
            let noise = i32::from(rng.below(31) as u8) - 15;
            codes.push((i32::from(centres[c * dim + d]) + noise).clamp(0, 255) as u8);
        }
    }
    if !labels.iter().any(|&l| l) {
        labels[0] = true;
    }
    (codes, labels)
}

/// Two groups of positives far apart on dim 0 and negatives between and around them: the
/// model needs (and finds) one box per group, with bounds midway to the negatives.
#[test]
fn two_separate_groups_give_two_boxes() {
    let codes: Vec<u8> = vec![20, 22, 24, 200, 202, 204, 10, 100, 120, 220];
    let labels = [true, true, true, true, true, true, false, false, false, false];
    let w = [1.0; 10];
    let data = TrainingSet::new(&codes, 1, &labels, &w).unwrap();
    let subsets = Subsets::new(1, vec![vec![0]]).unwrap();
    let model = fit_branch(&data, &subsets, &BranchParams::default()).unwrap();
    let mut bounds: Vec<(u8, u8)> = model.boxes.iter().map(|b| (b.lo[0], b.hi[0])).collect();
    bounds.sort_unstable();
    assert_eq!(bounds, vec![(15, 62), (160, 212)]);
}

/// A user negative among the positives, next to 200 random negatives far away: at weight 1
/// it is taken in with its neighbours (its class-weighted mass is tiny); at weight 100 (the
/// user repeating it) the box leaves it out.
#[test]
fn negative_weight_matters() {
    let mut codes: Vec<u8> = vec![50, 52, 54, 56, 58, 57];
    let mut labels = vec![true, true, true, true, true, false];
    for k in 0..200 {
        codes.push(if k % 2 == 0 { 0 } else { 255 });
        labels.push(false);
    }
    let mut light = vec![1.0; codes.len()];
    let subsets = Subsets::new(1, vec![vec![0]]).unwrap();
    let params = BranchParams { seed: 3, ..BranchParams::default() };
    let fit = |w: &[f64]| fit_branch(&TrainingSet::new(&codes, 1, &labels, w).unwrap(), &subsets, &params).unwrap();
    let covers_57 = |m: &clipbranches_learn::DecisionBranch| m.count(&[57]) > 0;
    assert!(covers_57(&fit(&light)), "a light negative among the positives is taken in");
    light[5] = 100.0;
    let heavy = fit(&light);
    assert!(!covers_57(&heavy), "a heavy one is left out: {heavy:?}");
    assert!([50u8, 52, 54, 56, 58].iter().all(|&v| heavy.count(&[v]) > 0), "every positive still covered: {heavy:?}");
}

#[test]
fn bad_parameters_are_typed_errors() {
    let (codes, labels) = clustered(4, 50, 1);
    let w = vec![1.0; 50];
    let data = TrainingSet::new(&codes, 4, &labels, &w).unwrap();
    let subsets = Subsets::original(4, 0).unwrap();
    for params in [
        BranchParams { max_boxes: 0, ..BranchParams::default() },
        BranchParams { min_pts: Some(0), ..BranchParams::default() },
        BranchParams { max_evals: 0.0, ..BranchParams::default() },
        BranchParams { max_evals: 1.5, ..BranchParams::default() },
        BranchParams { max_failures: 0, ..BranchParams::default() },
    ] {
        assert!(matches!(fit_branch(&data, &subsets, &params), Err(LearnError::InvalidArgument(_))), "{params:?}");
    }
    let wrong = Subsets::original(5, 0).unwrap();
    assert!(matches!(fit_branch(&data, &wrong, &BranchParams::default()), Err(LearnError::Dimension(_))));
    let none = EnsembleParams { members: 0, ..EnsembleParams::default() };
    assert!(matches!(fit_ensemble(&data, &subsets, &none), Err(LearnError::InvalidArgument(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every box holds a training positive (its seed) and uses a declared subset; refitting with the same seed gives the same model; the index, the fused scan and the
    /// naive loop agree with the model's own brute-force twin on the emitted boxes.
    #[test]
    fn models_are_valid_deterministic_and_agree_with_the_query_engines(
        dim in 2usize..10, rows in 20usize..400, seed in any::<u64>(), open in any::<bool>(), evals in 0.3f64..1.0,
    ) {
        let (codes, labels) = clustered(dim, rows, seed);
        let w = vec![1.0; rows];
        let data = TrainingSet::new(&codes, dim, &labels, &w).unwrap();
        let subsets = Subsets::original(dim, seed).unwrap();
        let params = BranchParams { open_sides: open, max_evals: evals, seed, ..BranchParams::default() };
        let model = fit_branch(&data, &subsets, &params).unwrap();
        prop_assert!(!model.boxes.is_empty());
        prop_assert!(model.boxes.len() <= params.max_boxes);
        for b in &model.boxes {
            let positives = codes.chunks_exact(dim).zip(&labels).filter(|&(row, &l)| l && b.contains(row)).count();
            prop_assert!(positives > 0, "a box without a positive: {b:?}");
            prop_assert!(subsets.sets().contains(&b.dims));
        }
        prop_assert_eq!(&model, &fit_branch(&data, &subsets, &params).unwrap());

        let ensemble = fit_ensemble(&data, &subsets, &EnsembleParams {
            members: 5,
            branch: BranchParams { max_evals: 0.5, seed, ..BranchParams::default() },
            keep_positives: open,
        }).unwrap();
        prop_assert_eq!(&ensemble, &fit_ensemble(&data, &subsets, &EnsembleParams {
            members: 5,
            branch: BranchParams { max_evals: 0.5, seed, ..BranchParams::default() },
            keep_positives: open,
        }).unwrap());

        let index = BlockIndex::build(&codes, dim, ZERO, BuildOptions { block_items: 128 }).unwrap();
        for (specs, members) in [(model.box_specs(0), 1usize), (ensemble.box_specs(), 5)] {
            if specs.is_empty() { continue; }
            let query = BoxQuery::new(dim, specs).unwrap();
            let by_index = index.query(&query).unwrap().sorted_by_row();
            let by_scan = scan::query(&codes, &query).unwrap();
            prop_assert_eq!(&by_index, &by_scan);
            prop_assert_eq!(&by_scan, &naive::query(&codes, &query));
            for ((&r, &boxes), &groups) in by_scan.rows.iter().zip(&by_scan.box_counts).zip(&by_scan.group_counts) {
                let row = &codes[r as usize * dim..(r as usize + 1) * dim];
                if members == 1 {
                    prop_assert_eq!(usize::from(boxes), model.count(row));
                } else {
                    prop_assert!((f64::from(groups) / members as f64 - ensemble.score(row)).abs() < 1e-12);
                }
            }
            let hit_count = by_scan.rows.len();
            let twin = codes.chunks_exact(dim).filter(|row| if members == 1 { model.count(row) > 0 } else { ensemble.score(row) > 0.0 }).count();
            prop_assert_eq!(hit_count, twin);
        }
    }
}
