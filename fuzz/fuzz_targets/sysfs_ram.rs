//! Fuzzes the RAM parsers: a `firmware/memmap` entry (the input split into
//! start, end and type at NUL bytes) and `/proc/iomem` text. Nothing may
//! panic; every range is non-empty and does not wrap; iomem ranges come back
//! sorted with gaps between them (merged), and bad lines name a real line.
#![no_main]

use dma_sim::sysfs::{parse_iomem, parse_memmap_entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let (s, e, k) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if let Ok(entry) = parse_memmap_entry(s, e, k) {
        assert!(entry.range.size > 0);
        assert!(entry.range.start.checked_add(entry.range.size - 1).is_some());
        assert!(!entry.kind.is_empty());
    }
    let io = parse_iomem(text);
    for r in &io.ram {
        assert!(r.size > 0);
        assert!(r.start.checked_add(r.size - 1).is_some());
    }
    for w in io.ram.windows(2) {
        assert!(w[0].last().raw().saturating_add(1) < w[1].start.raw());
    }
    assert!(!io.hidden || io.ram.is_empty());
    let lines = text.lines().count();
    assert!(io.bad_lines.iter().all(|(i, _)| *i < lines));
});
