//! The machine assembly itself: layout, domains per group, backend choice by
//! name, typed errors.

use dma_api::Direction;
use dma_iommu::DomainType;
use dma_sim::assembly::{Assembly, AssemblyError, AssemblyOptions, IommuMode};
use unidma_tests::{bdf, reference, reference_with};

#[test]
fn reference_default_is_strict_iommu_everywhere() {
    let a = reference_with(IommuMode::Strict);
    let io = a
        .iommu
        .as_ref()
        .expect("reference host bridge has an IOMMU");
    // Layout: everything below 4 GiB, inside the 0..2 GiB RAM range.
    assert_eq!(
        a.layout.page_tables.0.raw() + a.layout.page_tables.1,
        0x8000_0000
    );
    assert!(a.swiotlb.start().raw() + a.swiotlb.size() <= a.layout.page_tables.0.raw());
    for e in a.endpoints() {
        assert_eq!(e.backend_name, "iommu", "{}", e.bdf);
        let gd = &io.domains[&e.group];
        assert_eq!(gd.ty, DomainType::Dma);
        assert!(gd.members.contains(&e.bdf));
        assert_eq!(io.rc.group_of(e.bdf), Some(e.group));
    }
    // gpu0 and its audio function share one group and one domain.
    let g = a.endpoint(bdf("06:00.0")).unwrap().group;
    assert_eq!(a.endpoint(bdf("06:00.1")).unwrap().group, g);
    // Bridges are requesters too.
    assert!(io.rc.group_of(bdf("02:03.0")).is_some());
}

#[test]
fn iommu_off_uses_direct_and_no_translation() {
    let a = reference_with(IommuMode::Off);
    assert!(a.iommu.is_none());
    assert!(a.endpoints().all(|e| e.backend_name == "direct"));
    let d = a.device(bdf("03:00.0")).unwrap();
    let tr = d.explain_map(a.layout.scratch.0, 0x1000, Direction::ToDevice);
    assert_eq!(tr.dma.unwrap().raw(), a.layout.scratch.0.raw());
}

#[test]
fn lazy_mode_gives_flush_queue_domains() {
    let a = reference_with(IommuMode::Lazy);
    let io = a.iommu.as_ref().unwrap();
    assert!(io.domains.values().all(|g| g.ty == DomainType::DmaFq));
}

#[test]
fn per_device_backend_by_name_and_errors() {
    let mut o = AssemblyOptions::default();
    o.backends.insert(bdf("07:00.0"), "direct".into());
    let a = reference(o);
    let e = a.endpoint(bdf("07:00.0")).unwrap();
    assert_eq!(e.backend_name, "direct");
    assert_eq!(
        a.iommu.as_ref().unwrap().domains[&e.group].ty,
        DomainType::Identity
    );

    let m = dma_sim::machine::Machine::reference().unwrap();
    let mut o = AssemblyOptions::default();
    o.backends.insert(bdf("07:00.0"), "nope".into());
    let err = Assembly::build(m.clone(), o).unwrap_err();
    assert!(
        matches!(&err, AssemblyError::UnknownBackend { name, .. } if name == "nope"),
        "{err}"
    );

    let mut o = AssemblyOptions::default();
    o.backends.insert(bdf("06:00.0"), "iommu".into());
    o.backends.insert(bdf("06:00.1"), "direct".into());
    let err = Assembly::build(m.clone(), o).unwrap_err();
    assert!(matches!(err, AssemblyError::GroupConflict { .. }), "{err}");

    let o = AssemblyOptions {
        iommu: IommuMode::Off,
        backends: [(bdf("03:00.0"), "iommu".to_string())].into(),
        ..AssemblyOptions::default()
    };
    let err = Assembly::build(m.clone(), o).unwrap_err();
    assert!(matches!(err, AssemblyError::NoIommu { .. }), "{err}");

    let mut o = AssemblyOptions::default();
    o.backends.insert(bdf("02:00.0"), "direct".into());
    let err = Assembly::build(m, o).unwrap_err();
    assert!(matches!(err, AssemblyError::UnknownDevice { .. }), "{err}");
}

#[test]
fn debug_option_wraps_every_backend() {
    let a = reference(AssemblyOptions {
        debug: true,
        ..AssemblyOptions::default()
    });
    for e in a.endpoints() {
        assert!(e.debug.is_some());
        assert!(
            e.device.raw_backend().name().starts_with("debug("),
            "{}",
            e.device.raw_backend().name()
        );
    }
}

#[test]
fn every_example_machine_assembles() {
    for f in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/machines")).unwrap()
    {
        let p = f.unwrap().path();
        let m = dma_sim::machine::Machine::from_path(&p).unwrap();
        for mode in [IommuMode::Off, IommuMode::Strict, IommuMode::Lazy] {
            let built = Assembly::build(
                m.clone(),
                AssemblyOptions {
                    iommu: mode,
                    ..AssemblyOptions::default()
                },
            );
            if p.ends_with("s390x-zpci.toml") && mode == IommuMode::Off {
                // zPCI's MMIO windows decode bus 0..4 GiB, where untranslated
                // RAM DMA would land: only a translating IOMMU makes it work.
                assert!(
                    matches!(built, Err(AssemblyError::AmbiguousBusDecode { .. })),
                    "{}: untranslated zPCI must be refused",
                    p.display()
                );
                continue;
            }
            let a = built.unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(a.endpoints().count() > 0);
        }
    }
}

/// Groups computed once serve several assemblies of one machine; groups
/// of another topology generation (the machine changed since) are not
/// used, the assembly computes its own.
#[test]
fn assembly_with_precomputed_groups_matches_and_stale_groups_are_recomputed() {
    use dma_api::topology::{DeviceRecord, PortType};
    use dma_sim::machine::Machine;
    let m = Machine::reference().unwrap();
    let groups = m.iommu_groups();
    let domains = |a: &Assembly| {
        a.iommu
            .as_ref()
            .unwrap()
            .domains
            .iter()
            .map(|(g, d)| (*g, d.members.clone()))
            .collect::<Vec<_>>()
    };
    let plain = Assembly::new(m.clone()).unwrap();
    let shared = Assembly::build_grouped(m.clone(), &groups, AssemblyOptions::default()).unwrap();
    assert_eq!(domains(&plain), domains(&shared));
    // The machine gains a function after the groups were computed.
    let mut grown = m.clone();
    let mut r = DeviceRecord::new(bdf("00:09.0"), PortType::RcEndpoint, None);
    r.vendor = 0x8086;
    grown.hot_add(r).unwrap();
    let a = Assembly::build_grouped(grown.clone(), &groups, AssemblyOptions::default()).unwrap();
    assert_eq!(domains(&a), domains(&Assembly::new(grown).unwrap()));
    assert!(a.endpoint(bdf("00:09.0")).is_some());
    assert_eq!(domains(&a).len(), domains(&plain).len() + 1);
}
