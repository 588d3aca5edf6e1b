//! One list of arch facts, checked: the names `by_name` accepts are exactly
//! the names a machine file may give (`dma_sim::machine::ArchName::ALL`),
//! in the same order, and each resolves to a backend of that name.

use dma_sim::machine::ArchName;

#[test]
fn arch_names_match_machine_file_names() {
    let machine: Vec<&str> = ArchName::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(dma_arch::NAMES.as_slice(), machine.as_slice());
    for a in ArchName::ALL {
        assert_eq!(dma_arch::by_name(a.name()).unwrap().name(), a.name());
        assert_eq!(ArchName::from_name(a.name()), Some(a));
    }
}
