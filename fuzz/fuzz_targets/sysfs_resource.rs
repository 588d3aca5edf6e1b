//! Fuzzes the sysfs `resource` parser: any text must parse or fail with a
//! typed error naming a real line, never panic; every range it returns is
//! non-empty and does not wrap.
#![no_main]

use dma_sim::sysfs::parse_resource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_resource(text) {
        Ok(lines) => {
            let mut last = None;
            for l in &lines {
                assert!(l.size > 0);
                assert!(l.start.checked_add(l.size - 1).is_some());
                assert!(last.is_none_or(|p| l.index > p));
                last = Some(l.index);
            }
        }
        Err(e) => assert!(e.line < text.lines().count().max(1)),
    }
});
