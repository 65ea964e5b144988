//! Fuzzes SOFA loading (HDF5 parsing by `sofar`, then halo's checks, resampling and
//! triangulation): no input may panic or allocate without bound. Inputs are mutations of
//! the embedded MIT KEMAR set when seeded with it (fuzz/corpus/sofa_load).
#![no_main]

use halo::spatial::binaural::HrtfSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = HrtfSet::from_sofa_bytes(data, "fuzz.sofa", 48_000);
});
