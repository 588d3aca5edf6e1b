//! Every example machine, assembled with the IOMMU off, strict and lazy (the
//! host bridges given an IOMMU where the file has none): every endpoint maps
//! a RAM buffer both ways and the device's bytes go through the fabric —
//! through each arch's dma-ranges offsets without an IOMMU, through each
//! page-table format (VT-d, AMD v1, ARM LPAE, read by the hardware walker)
//! with one.

use dma_api::{Direction, DmaAttrs, PhysAddr};
use dma_iommu::pgtable::AnyFormat;
use dma_sim::assembly::{iommu_format, Assembly, AssemblyError, AssemblyOptions, IommuMode};
use dma_sim::machine::Machine;
use unidma_tests::*;

fn machines() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/machines");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| {
            let p = f.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            (p.display().to_string(), text)
        })
        .collect();
    v.sort();
    assert!(v.len() >= 4);
    v
}

fn with_iommu(text: &str) -> String {
    if text.contains("iommu = true") {
        text.to_string()
    } else {
        text.replace("[[host_bridge]]\n", "[[host_bridge]]\niommu = true\n")
    }
}

#[test]
fn every_endpoint_of_every_machine_moves_bytes_through_ram() {
    let mut refused_untranslated = 0;
    for (path, text) in machines() {
        for mode in [IommuMode::Off, IommuMode::Strict, IommuMode::Lazy] {
            let m = Machine::from_toml_str(&path, &with_iommu(&text)).unwrap();
            let built = Assembly::build(
                m,
                AssemblyOptions {
                    iommu: mode,
                    ..AssemblyOptions::default()
                },
            );
            if path.ends_with("s390x-zpci.toml") && mode == IommuMode::Off {
                // zPCI always translates. Untranslated, a RAM bus address
                // falls inside the file's MMIO windows (bus 0..4 GiB), so the
                // root complex would decode it as MMIO: refused up front.
                match built {
                    Err(AssemblyError::AmbiguousBusDecode { .. }) => refused_untranslated += 1,
                    Err(e) => panic!("{path}: wrong error {e}"),
                    Ok(_) => panic!("{path}: untranslated zPCI must be refused"),
                }
                continue;
            }
            let a = built.unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(a.iommu.is_some(), mode != IommuMode::Off, "{path}");
            for (i, ep) in a.endpoints().enumerate() {
                let buf = PhysAddr::new(scratch(&a, i as u64).raw() + 0x340);
                let len = 0x2100u64;
                let label = format!("{path} {mode:?} {}", ep.bdf);
                let dma = ep
                    .device
                    .map_phys(buf, len, Direction::Bidirectional, DmaAttrs::empty())
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                let data = pattern(len as usize, i as u8);
                dev_write(&a, ep.bdf, dma, &data).unwrap_or_else(|e| panic!("{label}: {e}"));
                ep.device
                    .sync_single_for_cpu(dma, len, Direction::Bidirectional)
                    .unwrap();
                assert!(
                    cpu_read(&a, buf, len as usize) == data,
                    "{label}: RAM differs"
                );
                let other = pattern(len as usize, !(i as u8));
                cpu_write(&a, buf, &other);
                ep.device
                    .sync_single_for_device(dma, len, Direction::Bidirectional)
                    .unwrap();
                assert!(
                    dev_read(&a, ep.bdf, dma, len as usize).unwrap() == other,
                    "{label}: device read differs"
                );
                ep.device
                    .unmap_phys(dma, len, Direction::Bidirectional, DmaAttrs::empty())
                    .unwrap();
                if mode == IommuMode::Strict {
                    assert!(
                        dev_read(&a, ep.bdf, dma, 1).is_err(),
                        "{label}: still mapped"
                    );
                }
            }
        }
    }
    assert_eq!(refused_untranslated, 1, "the s390x window-overlap check");
}

#[test]
fn page_table_format_follows_the_machine() {
    for (path, text) in machines() {
        let m = Machine::from_toml_str(&path, &text).unwrap();
        let f = iommu_format(&m).unwrap();
        let want = if path.ends_with("arm64-soc.toml") {
            "arm"
        } else if path.ends_with("amd-zen-two-gpus.toml") {
            "amd"
        } else {
            "vtd"
        };
        let got = match f {
            AnyFormat::ArmLpae(_) => "arm",
            AnyFormat::AmdV1(_) => "amd",
            AnyFormat::VtdSs(_) => "vtd",
        };
        assert_eq!(got, want, "{path}");
    }
}

#[test]
fn coherent_allocation_is_shared_by_cpu_and_device() {
    let a = reference_with(IommuMode::Strict);
    let d = a.device(bdf("03:00.0")).unwrap();
    let (phys, dma) = d.alloc_coherent(0x3000).unwrap();
    let data = pattern(0x3000, 0x12);
    dev_write(&a, bdf("03:00.0"), dma, &data).unwrap();
    // No sync: coherent memory.
    assert_eq!(cpu_read(&a, phys, 0x3000), data);
    d.free_coherent(phys, dma).unwrap();
    assert!(dev_write(&a, bdf("03:00.0"), dma, &data).is_err());
}

#[test]
fn dma_debug_sees_a_clean_run_and_a_double_unmap() {
    let a = reference(AssemblyOptions {
        debug: true,
        ..AssemblyOptions::default()
    });
    let ep = a.endpoint(bdf("03:00.0")).unwrap();
    let dbg = ep.debug.as_ref().unwrap();
    let buf = scratch(&a, 0);
    let dma = ep
        .device
        .map_phys(buf, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    ep.device.need_sync(dma);
    assert_eq!(dbg.active_count(), 1);
    ep.device
        .unmap_phys(dma, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(dbg.active_count(), 0);
    assert!(dbg.reports().is_empty(), "{:?}", dbg.reports());
    // The raw layer refuses the second unmap itself; the backend, called
    // directly, is caught by dma-debug.
    let req = dma_api::port::MapRequest {
        phys: buf,
        len: 0x1000,
        dir: Direction::ToDevice,
        attrs: DmaAttrs::empty(),
        target: dma_api::port::SegTarget::Ram,
    };
    let dma = ep.device.raw_backend().map(&req).unwrap();
    ep.device.raw_backend().unmap(dma, &req).unwrap();
    let _ = ep.device.raw_backend().unmap(dma, &req);
    assert!(!dbg.reports().is_empty(), "double unmap not reported");
}

/// Bug: RAM spanning two adjacent `[[ram]]` entries was refused
/// (`UnknownMemory` for a buffer across the boundary). Adjacent ranges of the
/// same kind and owner are one range for every consumer: the memory map, the
/// mapping layer and the fabric.
#[test]
fn ram_across_two_adjacent_ram_entries_is_one_range() {
    let split = |t: &str| {
        edit_once(
            t,
            "[[ram]]\nstart = 0x0\nsize = \"2GiB\"\n",
            "[[ram]]\nstart = 0x0\nsize = \"1GiB\"\n\n[[ram]]\nstart = 0x4000_0000\nsize = \"1GiB\"\n",
        )
    };
    let text = split(dma_sim::machine::REFERENCE_TOML);
    let m = Machine::from_toml_str("split.toml", &text).unwrap();
    let ram: Vec<_> = m
        .memmap
        .ranges()
        .iter()
        .filter(|r| r.kind == dma_api::memmap::RangeKind::Ram)
        .map(|r| (r.start.raw(), r.size))
        .collect();
    assert_eq!(
        ram,
        vec![(0, 0x8000_0000), (0x1_0000_0000, 60 << 30)],
        "adjacent [[ram]] entries are one range"
    );
    let buf = PhysAddr::new(0x4000_0000 - 0x800);
    let len = 0x1000u64;
    for mode in [IommuMode::Off, IommuMode::Strict] {
        let a = variant(
            split,
            AssemblyOptions {
                iommu: mode,
                ..AssemblyOptions::default()
            },
        );
        let who = bdf("03:00.0");
        let dev = a.device(who).unwrap();
        let dma = dev
            .map_phys(buf, len, Direction::FromDevice, DmaAttrs::empty())
            .unwrap_or_else(|e| panic!("{mode:?}: a buffer across the boundary: {e}"));
        let data = pattern(len as usize, 0x5a);
        dev_write(&a, who, dma, &data).unwrap();
        dev.sync_single_for_cpu(dma, len, Direction::FromDevice)
            .unwrap();
        assert!(cpu_read(&a, buf, len as usize) == data, "{mode:?}");
        dev.unmap_phys(dma, len, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
    }
}
