//! Integration tests of the learners: hand-checked models, properties, determinism, the
//! index/scan/twin agreement on emitted boxes, and bad inputs.

mod fit;
