//! Fuzzes the BDF parser: it must never panic, and anything it accepts must
//! print back to a string that parses to the same address.
#![no_main]

use dma_api::Bdf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(bdf) = s.parse::<Bdf>() {
            let again: Bdf = bdf.to_string().parse().expect("printed BDF must parse");
            assert_eq!(bdf, again);
        }
    }
});
