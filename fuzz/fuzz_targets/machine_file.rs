//! Fuzzes the machine-file parser: it must never panic, and any file it
//! accepts must satisfy the machine's invariants (topology structure, memory
//! map order and disjointness, every memory BAR in the map) and compute
//! IOMMU groups and a P2P route for every pair of its first functions.
#![no_main]

use dma_sim::machine::Machine;
use dma_api::p2p::calc_map_type_and_dist;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Machine::from_toml_str("fuzz.toml", src) else {
        return;
    };
    m.check_invariants().expect("accepted machine must re-validate");
    let _ = m.iommu_groups();
    let ids: Vec<_> = m.topology.devices().map(|(id, _)| id).take(16).collect();
    for &p in &ids {
        for &c in &ids {
            calc_map_type_and_dist(&m.topology, p, c).expect("present devices route");
        }
    }
});
