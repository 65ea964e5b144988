//! Fuzzes layout files (RON → speaker layout) and the panner built from a valid one: no
//! input may panic.
#![no_main]

use halo::scene::layout::Layout;
use halo::spatial::panner::Panner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(layout) = Layout::parse(text, "fuzz.ron")
        && layout.num_channels() <= 64
        && let Ok(panner) = Panner::new(&layout)
    {
        let mut gains = vec![0.0; panner.num_channels()];
        panner.gains(halo::scene::geometry::Direction::new(30.0, 10.0), 0.2, &mut gains);
    }
});
