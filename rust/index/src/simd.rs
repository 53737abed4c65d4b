//! Runtime CPU-feature dispatch for the hot loops.
//!
//! Each hot loop is written once as an `#[inline(always)]` body over plain slices (branch-free
//! so that the compiler vectorises it) and compiled three times: for AVX-512BW, for AVX2 and
//! for the portable baseline. [`level`] picks the best the running CPU has, once.

use std::sync::OnceLock;

/// The instruction-set level the hot loops run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// AVX-512 with byte/word instructions.
    Avx512,
    /// AVX2.
    Avx2,
    /// Whatever the compilation target guarantees (SSE2 on x86-64, NEON on aarch64).
    Portable,
}

/// The best level this CPU supports (detected once).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    if std::env::var_os("CLIPBRANCHES_PORTABLE_SIMD").is_some() {
        Level::Portable
    } else if is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512f") {
        Level::Avx512
    } else if is_x86_feature_detected!("avx2") {
        Level::Avx2
    } else {
        Level::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Portable
}

/// Defines `$name(args) -> ret` that dispatches to `$body` compiled for each [`Level`].
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty => $body:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx2")]
                fn avx512($($arg: $ty),*) -> $ret { $body($($arg),*) }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) -> $ret { $body($($arg),*) }
                match $crate::simd::level() {
                    // SAFETY: `level()` returned this variant only after runtime detection
                    // confirmed the CPU supports the features the function is compiled for.
                    $crate::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above, AVX2 was detected at runtime.
                    $crate::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::simd::Level::Portable => {}
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use multiversion;
