//! Fuzzes the session parser (RON text → validated scene): no input may panic, and a
//! layout file the session names is the fuzz input again (so layout parsing is reached
//! through sessions too).
#![no_main]

use halo::formats::session::parse;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse(text, Path::new("fuzz.ron"), &mut |_| Ok(text.to_string()));
});
