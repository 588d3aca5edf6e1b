//! Hot-plug on an assembled machine. A function the IOMMU has no context
//! entry for is blocked (a fault naming it), never let through untranslated;
//! `Assembly::hot_add` attaches a new function to its IOMMU group's domain
//! (creating one for a new group) and builds its `DmaDevice`;
//! `Assembly::hot_remove` refuses while the device has live mappings and
//! otherwise unregisters it everywhere (IOMMU view, p2pmem, memory map).

use dma_api::memmap::RangeKind;
use dma_api::topology::{Acs, AcsCap, Bar, BarSpace, DeviceRecord, PortType};
use dma_api::{Direction, DmaAddr, DmaAttrs, PhysAddr};
use dma_sim::assembly::{AssemblyError, IommuMode};
use dma_sim::fabric::{FabricFault, FaultReason, RcFaultReason, RootComplexIommu};
use unidma_tests::*;

/// A root-complex integrated endpoint in a free root-bus slot of the
/// reference server, with one 64-bit memory BAR in the high MMIO window.
fn rc_endpoint(bar: bool) -> DeviceRecord {
    let mut r = DeviceRecord::new(bdf("00:09.0"), PortType::RcEndpoint, None);
    r.vendor = 0x1af4;
    r.device = 0x1042;
    r.class = 0x010802;
    r.name = Some("hotplugged".into());
    if bar {
        r.bars.push(Bar {
            index: 0,
            addr: PhysAddr::new(0x40_0800_0000),
            size: 0x10_0000,
            space: BarSpace::Mem,
            is_64: true,
            prefetchable: true,
        });
    }
    r
}

fn iommu_fault(f: &FabricFault) -> &RcFaultReason {
    match &f.reason {
        FaultReason::IommuFault(rc) => {
            assert_eq!(rc.requester, f.requester, "{f}");
            &rc.reason
        }
        other => panic!("expected an IOMMU fault, got {other:?} ({f})"),
    }
}

/// Bug: the root complex's IOMMU view answered "no translation" for any
/// requester it did not know, so a function hot-added behind the strict
/// IOMMU (never attached to a domain) read and overwrote unmapped RAM.
#[test]
fn hot_added_function_without_a_context_entry_faults_naming_it() {
    let a = reference_with(IommuMode::Strict);
    let rec = rc_endpoint(false);
    let who = rec.bdf;
    a.ctx.topology.write().hot_add(rec).unwrap();
    let buf = scratch(&a, 3);
    let before = pattern(0x1000, 0x31);
    cpu_write(&a, buf, &before);
    // The raw physical address of RAM, used as a DMA address: no domain has
    // it mapped for this requester (it has no domain at all).
    let dma = DmaAddr::new(buf.raw());
    let f = dev_write(&a, who, dma, &pattern(0x1000, 0x77)).unwrap_err();
    assert_eq!(f.requester, who, "{f}");
    assert_eq!(*iommu_fault(&f), RcFaultReason::NoContext, "{f}");
    assert!(f.to_string().contains("0000:00:09.0"), "{f}");
    assert_eq!(
        cpu_read(&a, buf, 0x1000),
        before,
        "unmapped RAM overwritten"
    );
    let f = dev_read(&a, who, dma, 64).unwrap_err();
    assert_eq!(*iommu_fault(&f), RcFaultReason::NoContext, "{f}");
    assert_eq!(a.fabric.counters().bytes_written, 0);
    assert_eq!(a.fabric.counters().bytes_read, 0);
}

/// A proper hot-add attaches the function to a domain (its own group: a
/// fresh one), so it reaches RAM only through its own mappings; hot-remove
/// refuses while a mapping is live, then unregisters it everywhere; a
/// re-add at the same BDF gets a fresh domain attachment.
#[test]
fn hot_add_attaches_the_group_domain_and_hot_remove_unregisters_everywhere() {
    let mut a = reference_with(IommuMode::Strict);
    let who = a.hot_add(rc_endpoint(true)).unwrap();
    assert_eq!(who, bdf("00:09.0"));
    let ep = a.endpoint(who).unwrap().clone();
    assert_eq!(ep.backend_name, "iommu");
    let io = a.iommu.as_ref().unwrap();
    assert_eq!(io.rc.group_of(who), Some(ep.group));
    let gd = &io.domains[&ep.group];
    assert_eq!(gd.members, vec![who]);
    assert!(gd.dma.is_some(), "a translating domain");
    let first_domain = gd.id;
    assert!(io
        .domains
        .iter()
        .all(|(g, d)| *g == ep.group || d.id != first_domain));
    // Its BAR is in the memory map, owned by it.
    let id = a.ctx.topology.read().lookup(who).unwrap();
    let bar_kind = RangeKind::Bar {
        provider: id.provider_id(),
        bar: 0,
    };
    assert_eq!(
        a.ctx
            .memmap
            .read()
            .kind_of(PhysAddr::new(0x40_0800_0000))
            .map(|(r, _)| r.kind),
        Some(bar_kind)
    );

    // Unmapped RAM: a fault at the IOMMU, RAM unchanged.
    let buf = scratch(&a, 4);
    let before = pattern(0x2000, 0x21);
    cpu_write(&a, buf, &before);
    let f = dev_write(&a, who, DmaAddr::new(buf.raw()), &pattern(0x2000, 1)).unwrap_err();
    assert_eq!(*iommu_fault(&f), RcFaultReason::NotPresent, "{f}");
    assert_eq!(cpu_read(&a, buf, 0x2000), before);
    // Another device's mapping is not its mapping.
    let nvme0 = a.device(bdf("03:00.0")).unwrap().clone();
    let other = scratch(&a, 5);
    let other_dma = nvme0
        .map_phys(other, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let f = dev_write(&a, who, other_dma, &pattern(0x1000, 2)).unwrap_err();
    assert_eq!(*iommu_fault(&f), RcFaultReason::NotPresent, "{f}");
    nvme0
        .unmap_phys(other_dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    // Its own mapping works, byte-exact.
    let dma = ep
        .device
        .map_phys(buf, 0x2000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let data = pattern(0x2000, 3);
    dev_write(&a, who, dma, &data).unwrap();
    assert_eq!(cpu_read(&a, buf, 0x2000), data);

    // The platform registered its BAR as p2pmem.
    {
        let topo = a.ctx.topology.read();
        a.ctx
            .p2pmem
            .write()
            .add_resource(&topo, id, 0, 0, 0)
            .unwrap();
    }

    // Hot-remove with a live mapping: refused, nothing changed.
    let e = a.hot_remove(who).unwrap_err();
    assert!(
        matches!(e, AssemblyError::Busy { bdf, singles: 1, .. } if bdf == who),
        "{e}"
    );
    assert!(e.to_string().contains("0000:00:09.0"), "{e}");
    assert!(a.endpoint(who).is_some());
    dev_write(&a, who, dma, &data).unwrap();
    ep.device
        .unmap_phys(dma, 0x2000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    drop(ep);

    let gen = a.ctx.topology.read().generation();
    assert_eq!(a.hot_remove(who).unwrap(), vec![who]);
    assert!(a.ctx.topology.read().generation() > gen);
    assert!(a.endpoint(who).is_none());
    let io = a.iommu.as_ref().unwrap();
    assert_eq!(io.rc.group_of(who), None);
    assert!(io.domains.values().all(|d| !d.members.contains(&who)));
    assert!(a.ctx.p2pmem.read().resources(id).is_empty());
    assert!(a
        .ctx
        .memmap
        .read()
        .kind_of(PhysAddr::new(0x40_0800_0000))
        .is_none());
    // Gone: not on the fabric at all, and no context entry left at the
    // IOMMU (a stale requester ID is blocked, naming it).
    let f = dev_write(&a, who, dma, &data).unwrap_err();
    assert_eq!(f.reason, FaultReason::UnknownRequester, "{f}");
    let rc = io.rc.translate(who, dma, 8, true).unwrap_err();
    assert_eq!((rc.requester, rc.reason), (who, RcFaultReason::NoContext));
    assert!(matches!(a.hot_remove(who), Err(AssemblyError::Topology(_))));

    // Re-added at the same BDF: a fresh attachment (a new domain for its
    // new group), nothing of the old mapping left.
    a.hot_add(rc_endpoint(true)).unwrap();
    let ep2 = a.endpoint(who).unwrap().clone();
    let io = a.iommu.as_ref().unwrap();
    assert_eq!(io.rc.group_of(who), Some(ep2.group));
    assert_ne!(io.domains[&ep2.group].id, first_domain, "a fresh domain");
    let f = dev_write(&a, who, dma, &data).unwrap_err();
    assert_eq!(*iommu_fault(&f), RcFaultReason::NotPresent, "{f}");
    let dma2 = ep2
        .device
        .map_phys(buf, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(dev_read(&a, who, dma2, 0x1000).unwrap(), data[..0x1000]);
    ep2.device
        .unmap_phys(dma2, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
}

/// Hot-remove then re-add at the same BDF, this time with ACS redirect on
/// the function itself: the route cache (keyed by the topology generation)
/// gives the new verdict, and the function joins its group's existing domain
/// again.
#[test]
fn hot_remove_and_re_add_at_the_same_bdf_gets_a_fresh_route_verdict() {
    let mut a = reference_with(IommuMode::Strict);
    let nvme1 = bdf("04:00.0");
    let nvme0_cmb = PhysAddr::new(0x40_0000_0000);
    let target = |a: &dma_sim::assembly::Assembly| {
        let d = a.device(nvme1).unwrap();
        let dec = d.explain_map(nvme0_cmb, 0x1000, Direction::FromDevice);
        assert!(dec.error.is_none(), "{:?}", dec.error);
        dec.route.unwrap().map_type
    };
    assert_eq!(target(&a), dma_api::p2p::MapType::BusAddr);
    let old = a.endpoint(nvme1).unwrap().clone();
    let rec = {
        let topo = a.ctx.topology.read();
        let d = topo.device(topo.lookup(nvme1).unwrap()).unwrap();
        let mut r = DeviceRecord::new(nvme1, d.port, Some(bdf("02:01.0")));
        r.name = d.name.clone();
        r.vendor = d.vendor;
        r.device = d.device;
        r.class = d.class;
        r.bars = d.bars.clone();
        r
    };
    assert_eq!(a.hot_remove(nvme1).unwrap(), vec![nvme1]);
    assert_eq!(a.iommu.as_ref().unwrap().rc.group_of(nvme1), None);
    let mut redirected = rec.clone();
    redirected.acs = Some(AcsCap {
        cap: Acs::SV | Acs::RR | Acs::CR | Acs::UF,
        ctrl: Acs::SV | Acs::RR | Acs::CR | Acs::UF,
    });
    a.hot_add(redirected).unwrap();
    assert_eq!(
        target(&a),
        dma_api::p2p::MapType::ThruHostBridge,
        "a stale cached verdict"
    );
    let new = a.endpoint(nvme1).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&old.device, &new.device));
    let io = a.iommu.as_ref().unwrap();
    assert_eq!(io.rc.group_of(nvme1), Some(new.group));
    assert!(io.domains[&new.group].members.contains(&nvme1));
    // Its writes to nvme0's CMB now go up through the IOMMU and land.
    let d = new.device.clone();
    let dma = d
        .map_phys(nvme0_cmb, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_ne!(dma.raw(), 0x40_0000_0000, "an IOVA, not the bus address");
    let data = pattern(0x1000, 9);
    dev_write(&a, nvme1, dma, &data).unwrap();
    assert_eq!(cpu_read(&a, nvme0_cmb, 0x1000), data);
    d.unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
}

/// Refused hot-adds leave nothing behind; a hot-added port with a function
/// below it is removed with it, and `--iommu off` machines hot-add direct
/// devices.
#[test]
fn hot_add_refusals_leave_nothing_behind_and_subtrees_go_together() {
    let mut a = reference_with(IommuMode::Strict);
    let gen = a.ctx.topology.read().generation();
    let ranges = a.ctx.memmap.read().ranges().to_vec();
    let requesters = a.iommu.as_ref().unwrap().rc.requesters();
    // A duplicate BDF.
    let mut dup = rc_endpoint(false);
    dup.bdf = bdf("03:00.0");
    assert!(matches!(a.hot_add(dup), Err(AssemblyError::Topology(_))));
    // A BAR over RAM: outside every MMIO window of the host bridge, so the
    // topology refuses it.
    let mut over_ram = rc_endpoint(false);
    over_ram.bars.push(Bar {
        index: 0,
        addr: PhysAddr::new(0x1000_0000),
        size: 0x1000,
        space: BarSpace::Mem,
        is_64: true,
        prefetchable: false,
    });
    assert!(a.hot_add(over_ram).is_err());
    // An unknown backend asked for it: the topology change is rolled back.
    a.options
        .backends
        .insert(bdf("00:09.0"), "no-such-backend".into());
    let e = a.hot_add(rc_endpoint(true)).unwrap_err();
    assert!(matches!(e, AssemblyError::UnknownBackend { .. }), "{e}");
    a.options.backends.clear();
    assert!(a.ctx.topology.read().lookup(bdf("00:09.0")).is_none());
    assert!(
        a.ctx.topology.read().generation() > gen,
        "add and undo bump it"
    );
    assert_eq!(a.ctx.memmap.read().ranges(), &ranges[..]);
    assert_eq!(a.iommu.as_ref().unwrap().rc.requesters(), requesters);

    // A root port with an endpoint below: both registered, the port too
    // (bridges are requesters); removing the port removes both.
    let mut rp = DeviceRecord::new(bdf("00:03.0"), PortType::RootPort, None);
    rp.acs = Some(AcsCap {
        cap: Acs::SV | Acs::RR | Acs::CR | Acs::UF,
        ctrl: Acs::SV | Acs::RR | Acs::CR | Acs::UF,
    });
    a.hot_add(rp).unwrap();
    assert!(
        a.endpoint(bdf("00:03.0")).is_none(),
        "a port is no endpoint"
    );
    let ep = DeviceRecord::new(bdf("0a:00.0"), PortType::Endpoint, Some(bdf("00:03.0")));
    a.hot_add(ep).unwrap();
    let io = a.iommu.as_ref().unwrap();
    let g_port = io.rc.group_of(bdf("00:03.0")).unwrap();
    let g_ep = io.rc.group_of(bdf("0a:00.0")).unwrap();
    assert_ne!(
        g_port, g_ep,
        "ACS-isolated port: the endpoint has its own group"
    );
    let buf = scratch(&a, 6);
    let d = a.device(bdf("0a:00.0")).unwrap().clone();
    let dma = d
        .map_phys(buf, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    dev_write(&a, bdf("0a:00.0"), dma, &pattern(0x1000, 4)).unwrap();
    let e = a.hot_remove(bdf("00:03.0")).unwrap_err();
    assert!(
        matches!(e, AssemblyError::Busy { bdf: b, .. } if b == bdf("0a:00.0")),
        "{e}"
    );
    d.unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(
        a.hot_remove(bdf("00:03.0")).unwrap(),
        vec![bdf("00:03.0"), bdf("0a:00.0")]
    );
    assert_eq!(a.iommu.as_ref().unwrap().rc.requesters(), requesters);

    // Without an IOMMU: a direct device, no IOMMU view to register with.
    let mut off = reference_with(IommuMode::Off);
    let who = off.hot_add(rc_endpoint(false)).unwrap();
    assert_eq!(off.endpoint(who).unwrap().backend_name, "direct");
    let d = off.device(who).unwrap().clone();
    let buf = scratch(&off, 0);
    let dma = d
        .map_phys(buf, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let data = pattern(0x1000, 5);
    dev_write(&off, who, dma, &data).unwrap();
    assert_eq!(cpu_read(&off, buf, 0x1000), data);
    d.unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(off.hot_remove(who).unwrap(), vec![who]);
}
