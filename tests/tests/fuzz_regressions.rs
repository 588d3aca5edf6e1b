//! Bugs the address-translation fuzzing (`dma_sim::fuzzing`, the `dma_ops`
//! target) found, each pinned by the smallest machine that shows it.

use dma_api::{Direction, DmaAttrs, DmaError, PhysAddr};
use dma_sim::machine::Machine;
use dma_sim::{Assembly, AssemblyOptions, IommuMode};

/// Two host bridges without an IOMMU; the second has explicit dma-ranges
/// over its RAM only (bus addresses up to 4 GiB + 1 GiB). An endpoint on
/// it maps a p2pmem range of an endpoint on the first host bridge, whose
/// BAR is in the first bridge's 64-bit window.
const TWO_BRIDGES: &str = r#"
[machine]
name = "two-bridges"
arch = "x86_64"
cpu_vendor = "intel"
cpu_family = 6

[[ram]]
start = 0x0
size = "2GiB"

[[ram]]
start = 0x1_0000_0000
size = "1GiB"

[[host_bridge]]
name = "pci0000:00"
bus = 0
iommu = false
vendor = 0x8086
device = 0x2030
mmio = [{ cpu = 0xc000_0000, size = 0x800_0000 }, { cpu = 0x40_0000_0000, size = 0x10_0000_0000 }]

[[host_bridge]]
name = "pci0000:40"
bus = 0x40
iommu = false
vendor = 0x8086
device = 0x2030
mmio = [{ cpu = 0xc800_0000, size = 0x800_0000 }, { cpu = 0x50_0000_0000, size = 0x10_0000_0000 }]
dma_ranges = [{ cpu = 0x0, size = 0xc000_0000 }, { cpu = 0x1_0000_0000, size = 0x4000_0000 }]

[[device]]
bdf = "0000:00:08.0"
name = "provider"
kind = "rc_endpoint"
vendor = 0x1d0f
device = 0x1001
bars = [{ index = 0, addr = 0x40_0000_0000, size = "1M", mem64 = true }]
p2pmem = [{ bar = 0, publish = true }]

[[device]]
bdf = "0000:40:08.0"
name = "client"
kind = "rc_endpoint"
vendor = 0x1d0f
device = 0x1002
"#;

/// Peer MMIO outside the client's host-bridge windows is mapped 1:1 (Linux
/// `dma_direct_map_phys` with `DMA_ATTR_MMIO`), and Linux's `dma_capable`
/// then holds that address to `min_not_zero(mask, bus_dma_limit)`, the
/// limit being the top of the device's dma-ranges. The direct backend
/// checked the mask only and handed out 0x40_0000_0000, an address the
/// client's root complex cannot decode (the fabric faults `Unroutable`).
#[test]
fn peer_mmio_beyond_the_clients_dma_ranges_is_refused_typed() {
    let m = Machine::from_toml_str("two-bridges", TWO_BRIDGES).unwrap();
    let opts = AssemblyOptions {
        iommu: IommuMode::Off,
        ..AssemblyOptions::default()
    };
    let a = Assembly::build(m, opts).unwrap();
    let client = a.find("client").unwrap();
    let bar = PhysAddr::new(0x40_0000_0000);
    let got = client
        .device
        .map_phys(bar, 0x1000, Direction::ToDevice, DmaAttrs::empty());
    assert_eq!(
        got,
        Err(DmaError::MmioNotBounceable {
            phys: bar,
            len: 0x1000
        })
    );
    // Inside the dma-ranges' reach the 1:1 address still maps: the
    // provider's own BAR from the provider, through its own window.
    let provider = a.find("provider").unwrap();
    assert_eq!(
        provider
            .device
            .map_phys(bar, 0x1000, Direction::ToDevice, DmaAttrs::empty())
            .map(|d| d.raw()),
        Ok(0x40_0000_0000)
    );
}

/// The same RAM mapped twice by one device without an IOMMU (one from the
/// device, one both ways) has one DMA address; a sync of the second must be
/// checked against the second (Linux dma-debug's best fit by size and
/// direction), not reported as a direction mismatch against the first. The
/// input the `dma_ops` target found (a 47-step case, dma-debug on), kept as
/// `fuzz/seeds/dma_ops/regress-sync-best-fit`.
#[test]
fn a_sync_of_memory_mapped_twice_is_checked_against_the_best_fitting_mapping() {
    replay_seed(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/seeds/dma_ops/regress-sync-best-fit"
    ));
}

/// Replays a checked-in `dma_ops` input (it must run with dma-debug on)
/// and panics with the broken invariant.
fn replay_seed(path: &str) {
    replay_input(path, true);
}

/// Replays a checked-in `dma_ops` input, which must run with dma-debug on
/// or off as `debug` says, and panics with the broken invariant.
fn replay_input(path: &str, debug: bool) {
    use dma_sim::fuzzing::{run_case, FuzzCase, StandardBackends};
    let data = std::fs::read(path).expect("the checked-in input");
    let case = FuzzCase::from_bytes(&data).expect("decodes");
    assert_eq!(case.debug, debug, "the case runs with dma-debug {debug}");
    if let Err(v) = run_case(&case, &StandardBackends) {
        panic!("{v}");
    }
}

/// Two live tables of one device (riscv64, no IOMMU) start with the same
/// page, so their first segments share one DMA address and fit an unmap
/// equally well; their later entries differ. dma-debug compared each
/// unmap_sg's plan with the first table holding that address and reported
/// a phys mismatch for both correct unmaps (Linux compares no physical
/// address on unmap_sg; each unmap now undoes its own table). The input the
/// `dma_ops` target found, kept (minimised) as
/// `fuzz/seeds/dma_ops/regress-unmap-sg-shared-page`.
#[test]
fn two_tables_sharing_a_first_page_each_unmap_their_own_entries() {
    replay_seed(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/seeds/dma_ops/regress-unmap-sg-shared-page"
    ));
}

/// Three tables of one device (arm64, no IOMMU, peer memory redirected to
/// RAM) start with the same segment; two have the same plan (the same
/// pages) and differ only in the lengths of their later entries.
/// Telling tables apart by plan alone let one unmap take another table's
/// entries, and a later correct unmap was compared with a foreign plan;
/// tables are now told apart by plan, CPU lengths and DMA segments. Found
/// by the `dma_ops` target right after the fix above, kept (minimised) as
/// `fuzz/seeds/dma_ops/regress-unmap-sg-same-plan`.
#[test]
fn tables_with_one_plan_but_other_lengths_each_unmap_their_own_entries() {
    replay_seed(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/seeds/dma_ops/regress-unmap-sg-same-plan"
    ));
}

/// arm64, lazy IOMMU mode: an untrusted function keeps the group of two
/// functions strict (Linux gives an untrusted device a strict `DMA`
/// domain). After an ACS write splits the hierarchy, the trusted function
/// is re-added alone in a new group, whose new default domain is lazy
/// (`DMA_FQ`), so its unmap leaves the translation reachable until the
/// flush. The harness copied the old group's strict mode to the new group
/// and reported that stale translation as unexplained reach; it now derives
/// a re-added function's invalidation mode as at start (mode and trust of
/// the new group's members; an untrusted function joining a lazy group
/// makes it strict). The raw input the `dma_ops` target found, kept as
/// `fuzz/seeds/dma_ops/regress-lazy-replug`.
#[test]
fn a_function_re_added_alone_after_an_acs_change_gets_a_lazy_domain() {
    replay_input(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/seeds/dma_ops/regress-lazy-replug"
        ),
        false,
    );
}

/// After an ACS change put a root port and an idle function into one IOMMU
/// group, the function was removed and re-added at its BDF; its record asks
/// for a lazy IOMMU domain while the port's group already has a strict one.
/// The assembly refuses with a typed `GroupConflict` (one domain per group;
/// Linux never regroups a running system), as it refuses a `GroupMerge`, and
/// the harness took the refusal for a broken invariant. The raw input the
/// `dma_ops` target found, kept as
/// `fuzz/seeds/dma_ops/regress-replug-group-conflict`.
#[test]
fn a_re_add_into_a_group_with_another_domain_type_is_a_typed_refusal() {
    replay_input(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/seeds/dma_ops/regress-replug-group-conflict"
        ),
        true,
    );
}
