//! Fuzzes the config-space decoder: any bytes must decode or fail with a
//! typed error, never panic, and every capability it reports must lie
//! inside the buffer.
#![no_main]

use dma_pci::config::{parse_config, walk_caps, walk_ext_caps};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse_config(data) {
        for c in &p.caps {
            assert!(usize::from(c.offset) + 2 <= data.len());
            assert!(c.offset >= 0x40 && c.offset % 4 == 0);
        }
        for c in &p.ext_caps {
            assert!(usize::from(c.offset) + 4 <= data.len());
            assert!(c.offset >= 0x100 && c.offset % 4 == 0);
        }
        if let Some(pcie) = p.pcie {
            assert!(usize::from(pcie.offset) + 4 <= data.len());
        }
        if let Some(acs) = p.acs {
            assert!(usize::from(acs.offset) + 8 <= data.len());
        }
        let _ = p.pcie_type();
    }
    // The raw walkers too, whatever the header says.
    for w in [walk_caps(data, 0x34).caps.len(), walk_ext_caps(data).caps.len()] {
        assert!(w <= 480);
    }
});
