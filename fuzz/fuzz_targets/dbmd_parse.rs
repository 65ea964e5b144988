//! Fuzz target: the `dbmd` chunk reader on arbitrary bytes never panics, and whatever it
//! reads writes back to bytes that read the same.
#![no_main]

use halo::formats::dbmd::Dbmd;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = Dbmd::parse(data) {
        let again = Dbmd::parse(&d.to_bytes()).expect("written chunk reads");
        let modes = |d: &Dbmd| d.supplemental.as_ref().map(|s| s.binaural.clone());
        assert_eq!(modes(&again), modes(&d));
    }
});
