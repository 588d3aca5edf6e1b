//! The checks behind [`crate::conformance_tests!`]. Each takes the backend
//! under test and panics with a message naming the arch and the offending
//! values when the backend does not conform. They use only the
//! [`ArchDma`] trait and the arch's own [`ArchInfo`] row, so a new arch runs
//! them unchanged.

use super::decode::{builtin_decoder, Decoder};
use dma_api::arch_port::{
    ArchDevice, ArchDma, ArchInfo, CacheEvent, CacheProgram, EdgePolicy, P2pSupport, PeerRoute,
    SyncOp, SyncPoint, SyncRules, MAX_PROGRAM_LINES,
};
use dma_api::{
    AddrWindow, BusAddr, Direction, DmaAttrs, DmaError, DmaMask, ErrorKind, PhysAddr, ProviderId,
    SegKind, WindowError, WindowMap,
};

const OPS: [SyncOp; 3] = [SyncOp::Clean, SyncOp::Invalidate, SyncOp::CleanInvalidate];

fn w(cpu: u64, bus: u64, size: u64) -> AddrWindow {
    AddrWindow {
        cpu_start: PhysAddr::new(cpu),
        bus_start: BusAddr::new(bus),
        size,
    }
}

/// The kit's dma-ranges: an offset window, a one-page window, and a window
/// ending at the very top of the physical address space.
pub fn fixture_dma_ranges() -> [AddrWindow; 3] {
    [
        w(0x8000_0000, 0x0, 0x4000_0000),
        w(0x1_0000_0000, 0x8000_0000, 0x1000),
        w(0xffff_ffff_ffff_f000, 0x2_0000_0000, 0x1000),
    ]
}

/// The kit's host-bridge MMIO windows: an offset 32-bit window and an
/// identity 64-bit one.
pub fn fixture_host_bridge() -> [AddrWindow; 2] {
    [
        w(0x40_0000_0000, 0xc000_0000, 0x1000_0000),
        w(0x60_0000_0000, 0x60_0000_0000, 0x1_0000_0000),
    ]
}

fn map(ws: &[AddrWindow]) -> WindowMap {
    match WindowMap::new(ws.iter().copied()) {
        Ok(m) => m,
        Err(e) => panic!("kit fixture windows are invalid: {e}"),
    }
}

fn device(mask: DmaMask) -> ArchDevice {
    ArchDevice::new(map(&fixture_dma_ranges()), true, mask)
}

fn enc_bit(arch: &dyn ArchDma) -> u64 {
    match arch.info().mem_encrypt_bit {
        Some(b) => 1u64 << b,
        None => 0,
    }
}

/// ram_to_bus → bus_to_ram and bar_to_bus → bus_to_bar return the input, and
/// the bus address is exactly the window offset applied (plus the
/// encryption bit for private memory on an encrypting platform).
pub fn translation_round_trip(arch: &dyn ArchDma) {
    let n = arch.name();
    for enc in [false, true] {
        let dev = device(DmaMask::BITS_64).with_mem_encrypt(enc);
        for win in fixture_dma_ranges() {
            let last = win.size - 1;
            for (off, len) in [(0, 1), (0, win.size), (last / 2, 8), (last, 1)] {
                let phys = PhysAddr::new(win.cpu_start.raw() + off);
                for attrs in [DmaAttrs::empty(), DmaAttrs::CC_SHARED] {
                    let plain = win.bus_start.raw() + off;
                    let want = if enc && !attrs.contains(DmaAttrs::CC_SHARED) {
                        plain | enc_bit(arch)
                    } else {
                        plain
                    };
                    let bus = arch.ram_to_bus(&dev, phys, len, attrs);
                    assert_eq!(
                        bus,
                        Ok(BusAddr::new(want)),
                        "{n}: ram_to_bus({phys}, {len:#x}, enc={enc}, {attrs:?})"
                    );
                    assert_eq!(
                        arch.bus_to_ram(&dev, BusAddr::new(want), len),
                        Ok(phys),
                        "{n}: bus_to_ram({want:#x}, {len:#x}, enc={enc})"
                    );
                }
            }
        }
    }
    let hb = map(&fixture_host_bridge());
    for win in fixture_host_bridge() {
        for off in [0, 0x1234, win.size - 1] {
            let phys = PhysAddr::new(win.cpu_start.raw() + off);
            let bus = BusAddr::new(win.bus_start.raw() + off);
            assert_eq!(
                arch.bar_to_bus(&hb, phys, 1),
                Ok(bus),
                "{n}: bar_to_bus({phys})"
            );
            assert_eq!(
                arch.bus_to_bar(&hb, bus, 1),
                Ok(phys),
                "{n}: bus_to_bar({bus})"
            );
        }
    }
}

/// Every dma-range and host-bridge window edge, ±1: the first and last
/// byte translate, the byte before and after and any straddling range are
/// typed errors naming the range.
pub fn window_edges(arch: &dyn ArchDma) {
    let n = arch.name();
    let dev = device(DmaMask::BITS_64);
    let hb = map(&fixture_host_bridge());
    let ram = |p: u64, l: u64| arch.ram_to_bus(&dev, PhysAddr::new(p), l, DmaAttrs::empty());
    let bar = |p: u64, l: u64| arch.bar_to_bus(&hb, PhysAddr::new(p), l);
    type Tr<'a> = &'a dyn Fn(u64, u64) -> Result<BusAddr, DmaError>;
    let sets: [(Tr, Vec<AddrWindow>); 2] = [
        (&ram, fixture_dma_ranges().to_vec()),
        (&bar, fixture_host_bridge().to_vec()),
    ];
    for (tr, wins) in sets {
        for win in wins {
            let first = win.cpu_start.raw();
            let last = first + (win.size - 1);
            let bus_last = win.bus_start.raw() + (win.size - 1);
            assert_eq!(
                tr(first, 1),
                Ok(win.bus_start),
                "{n}: first byte of {win:?}"
            );
            assert_eq!(
                tr(last, 1),
                Ok(BusAddr::new(bus_last)),
                "{n}: last byte of {win:?}"
            );
            assert_eq!(tr(first, win.size), Ok(win.bus_start), "{n}: whole {win:?}");
            let nt = |p: u64, l: u64| DmaError::NotTranslatable {
                phys: PhysAddr::new(p),
                len: l,
            };
            assert_eq!(
                tr(first - 1, 1),
                Err(nt(first - 1, 1)),
                "{n}: byte before {win:?}"
            );
            assert_eq!(
                tr(first - 1, 2),
                Err(nt(first - 1, 2)),
                "{n}: straddling start of {win:?}"
            );
            if let Some(after) = last.checked_add(1) {
                assert_eq!(tr(after, 1), Err(nt(after, 1)), "{n}: byte after {win:?}");
                assert_eq!(
                    tr(last, 2),
                    Err(nt(last, 2)),
                    "{n}: straddling end of {win:?}"
                );
                let long = win.size + 1;
                assert_eq!(tr(first, long), Err(nt(first, long)), "{n}: one too long");
            }
        }
    }
    // The gap between the first two dma-ranges.
    assert_eq!(
        ram(0xc000_0000, 1),
        Err(DmaError::NotTranslatable {
            phys: PhysAddr::new(0xc000_0000),
            len: 1
        }),
        "{n}: gap between windows"
    );
    // Reverse edges.
    let bus_after = BusAddr::new(0x8000_1000);
    assert_eq!(
        arch.bus_to_ram(&dev, bus_after, 1),
        Err(DmaError::BusNotTranslatable {
            bus: bus_after,
            len: 1
        }),
        "{n}: bus byte after a window"
    );
}

/// Ranges that wrap the 64-bit space are `PhysOverflow` / `BusNotTranslatable`
/// everywhere (translation, BAR translation, cache programs); the very last
/// byte still works.
pub fn top_of_address_space(arch: &dyn ArchDma) {
    let n = arch.name();
    let dev = device(DmaMask::BITS_64);
    let top = PhysAddr::MAX;
    assert_eq!(
        arch.ram_to_bus(&dev, top, 1, DmaAttrs::empty()),
        Ok(BusAddr::new(0x2_0000_0fff)),
        "{n}: last byte of the address space"
    );
    for (p, l) in [
        (top, 2),
        (PhysAddr::new(u64::MAX - 0xfff), u64::MAX),
        (PhysAddr::new(2), u64::MAX),
    ] {
        let of = Err(DmaError::PhysOverflow { phys: p, len: l });
        assert_eq!(
            arch.ram_to_bus(&dev, p, l, DmaAttrs::empty()),
            of,
            "{n}: ram_to_bus wrap"
        );
        assert_eq!(
            arch.bar_to_bus(&map(&fixture_host_bridge()), p, l),
            of,
            "{n}: bar_to_bus wrap"
        );
        for op in OPS {
            assert_eq!(
                arch.cache_program(p, l, SegKind::Ram, op),
                Err(DmaError::PhysOverflow { phys: p, len: l }),
                "{n}: cache_program wrap {op}"
            );
        }
    }
    assert_eq!(
        arch.bus_to_ram(&dev, BusAddr::MAX, 2),
        Err(DmaError::BusNotTranslatable {
            bus: BusAddr::MAX,
            len: 2
        }),
        "{n}: bus_to_ram wrap"
    );
    // The last line of the space gets maintenance like any other.
    let p = arch.cache_program(top, 1, SegKind::Ram, SyncOp::Clean);
    let p = p.unwrap_or_else(|e| panic!("{n}: last byte cache program: {e}"));
    let want = if arch.info().always_coherent { 0 } else { 1 };
    assert_eq!(p.ops().len(), want, "{n}: last byte cache program");
    if let Some(op) = p.ops().first() {
        assert_eq!(
            op.line.raw(),
            u64::MAX - (arch.cache_line_size() - 1),
            "{n}"
        );
    }
}

/// A bus range beyond the device's mask is a `Fallback`
/// [`DmaError::MaskUnreachable`] naming it; exactly at the limit it works.
pub fn mask_limits(arch: &dyn ArchDma) {
    let n = arch.name();
    let m32 = DmaMask::BITS_32;
    let ident = ArchDevice::new(WindowMap::identity_all(), true, m32);
    let ok = arch.ram_to_bus(
        &ident,
        PhysAddr::new(0xffff_f000),
        0x1000,
        DmaAttrs::empty(),
    );
    assert_eq!(
        ok,
        Ok(BusAddr::new(0xffff_f000)),
        "{n}: range ending at the 32-bit limit"
    );
    let e = arch.ram_to_bus(
        &ident,
        PhysAddr::new(0xffff_f000),
        0x1001,
        DmaAttrs::empty(),
    );
    assert_eq!(
        e,
        Err(DmaError::MaskUnreachable {
            bus: BusAddr::new(0xffff_f000),
            len: 0x1001,
            mask: m32
        }),
        "{n}: one byte past the 32-bit limit"
    );
    assert_eq!(e.err().map(|e| e.kind()), Some(ErrorKind::Fallback), "{n}");
    // dma-ranges bring high RAM low: the check is on the bus address.
    let dev = device(m32);
    assert_eq!(
        arch.ram_to_bus(
            &dev,
            PhysAddr::new(0x1_0000_0000),
            0x1000,
            DmaAttrs::empty()
        ),
        Ok(BusAddr::new(0x8000_0000)),
        "{n}: 4 GiB RAM at bus 2 GiB is reachable with 32 bits"
    );
    assert_eq!(
        arch.ram_to_bus(
            &dev,
            PhysAddr::new(0xffff_ffff_ffff_f000),
            0x10,
            DmaAttrs::empty()
        ),
        Err(DmaError::MaskUnreachable {
            bus: BusAddr::new(0x2_0000_0000),
            len: 0x10,
            mask: m32
        }),
        "{n}: window above the mask"
    );
    // With encryption the C-bit counts against the mask; shared memory does not carry it.
    let enc = ArchDevice::new(WindowMap::identity_all(), true, m32).with_mem_encrypt(true);
    let r = arch.ram_to_bus(&enc, PhysAddr::new(0x1000), 0x10, DmaAttrs::empty());
    if arch.info().mem_encrypt_bit.is_some() {
        assert!(
            matches!(r, Err(DmaError::MaskUnreachable { .. })),
            "{n}: encrypted under 32-bit mask: {r:?}"
        );
        assert_eq!(
            arch.ram_to_bus(&enc, PhysAddr::new(0x1000), 0x10, DmaAttrs::CC_SHARED),
            Ok(BusAddr::new(0x1000)),
            "{n}: shared under 32-bit mask"
        );
    } else {
        assert_eq!(
            r,
            Ok(BusAddr::new(0x1000)),
            "{n}: no encryption bit on this arch"
        );
    }
}

/// The encryption bit is set only for private memory, never for
/// `CC_SHARED`, stripped on the way back, and an address that already has
/// it is a typed error rather than an alias.
pub fn memory_encryption(arch: &dyn ArchDma) {
    let n = arch.name();
    let dev =
        ArchDevice::new(WindowMap::identity_all(), true, DmaMask::BITS_64).with_mem_encrypt(true);
    let plain = ArchDevice::new(WindowMap::identity_all(), true, DmaMask::BITS_64);
    let p = PhysAddr::new(0x12_3000);
    let c = enc_bit(arch);
    assert_eq!(
        arch.ram_to_bus(&plain, p, 64, DmaAttrs::empty()),
        Ok(BusAddr::new(0x12_3000)),
        "{n}: unencrypted platform"
    );
    assert_eq!(
        arch.ram_to_bus(&dev, p, 64, DmaAttrs::empty()),
        Ok(BusAddr::new(0x12_3000 | c)),
        "{n}: private"
    );
    assert_eq!(
        arch.ram_to_bus(&dev, p, 64, DmaAttrs::CC_SHARED),
        Ok(BusAddr::new(0x12_3000)),
        "{n}: shared"
    );
    assert_eq!(
        arch.bus_to_ram(&dev, BusAddr::new(0x12_3000 | c), 64),
        Ok(p),
        "{n}: back from private"
    );
    if c != 0 {
        let high = PhysAddr::new(c | 0x1000);
        assert_eq!(
            arch.ram_to_bus(&dev, high, 8, DmaAttrs::empty()),
            Err(DmaError::NotTranslatable { phys: high, len: 8 }),
            "{n}: address already carrying the encryption bit"
        );
        let straddle = PhysAddr::new(c - 4);
        assert_eq!(
            arch.ram_to_bus(&dev, straddle, 8, DmaAttrs::empty()),
            Err(DmaError::NotTranslatable {
                phys: straddle,
                len: 8
            }),
            "{n}: range crossing the encryption bit"
        );
    }
}

/// The P2P veto follows the declared support exactly; refusals are
/// `Fallback` [`DmaError::ArchNoP2p`] naming the arch and why.
pub fn p2p_verdicts(arch: &dyn ArchDma) {
    let n = arch.name();
    assert_eq!(arch.p2p_support(), arch.info().p2p, "{n}");
    for route in [PeerRoute::BusAddr, PeerRoute::HostBridge] {
        for same in [true, false] {
            let got = arch.check_p2p(route, same);
            let refuse = |why| Err(DmaError::ArchNoP2p { arch: n, why });
            let want = match arch.p2p_support() {
                P2pSupport::Full => Ok(()),
                P2pSupport::SameHostBridge { why } => {
                    if same || route == PeerRoute::BusAddr {
                        Ok(())
                    } else {
                        refuse(why)
                    }
                }
                P2pSupport::None { why } => refuse(why),
            };
            assert_eq!(
                got, want,
                "{n}: check_p2p({route:?}, same_host_bridge={same})"
            );
            if let Err(e) = got {
                assert_eq!(e.kind(), ErrorKind::Fallback, "{n}");
                let msg = e.to_string();
                assert!(msg.contains(n), "{n}: error does not name the arch: {msg}");
            }
        }
    }
}

/// Coherency follows the device flag unless the arch is always coherent;
/// the default device has the arch's default; always-coherent arches need
/// no maintenance anywhere.
pub fn coherency(arch: &dyn ArchDma) {
    let n = arch.name();
    let info = arch.info();
    let mut dev = device(DmaMask::BITS_64);
    assert!(arch.coherent(&dev), "{n}: coherent device");
    dev.coherent = false;
    assert_eq!(
        arch.coherent(&dev),
        info.always_coherent,
        "{n}: non-coherent device"
    );
    let d = arch.default_device(WindowMap::identity_all(), DmaMask::BITS_64);
    assert_eq!(d.coherent, info.default_coherent, "{n}: default coherency");
    if info.always_coherent {
        assert_eq!(
            info.sync,
            SyncRules::NONE,
            "{n}: always coherent but has sync rules"
        );
    }
}

/// The sync rules keep data correct (the Linux ownership rules of
/// Documentation/core-api/dma-api-howto.rst): CPU writes reach memory
/// before the device reads; stale lines are discarded before the CPU reads
/// what the device wrote.
pub fn sync_rules_are_sound(arch: &dyn ArchDma) {
    let n = arch.name();
    if arch.info().always_coherent {
        for p in [SyncPoint::ForDevice, SyncPoint::ForCpu] {
            for d in [
                Direction::ToDevice,
                Direction::FromDevice,
                Direction::Bidirectional,
            ] {
                assert_eq!(arch.sync_op(p, d), None, "{n}: {p:?} {d}");
            }
        }
        return;
    }
    let cleans = |o: Option<SyncOp>| matches!(o, Some(SyncOp::Clean | SyncOp::CleanInvalidate));
    let invals =
        |o: Option<SyncOp>| matches!(o, Some(SyncOp::Invalidate | SyncOp::CleanInvalidate));
    for d in [Direction::ToDevice, Direction::Bidirectional] {
        assert!(
            cleans(arch.sync_op(SyncPoint::ForDevice, d)),
            "{n}: {d} for_device must clean"
        );
    }
    for d in [Direction::FromDevice, Direction::Bidirectional] {
        assert!(
            invals(arch.sync_op(SyncPoint::ForCpu, d)),
            "{n}: {d} for_cpu must invalidate"
        );
    }
}

fn expected_lines(start: u64, len: u64, line: u64) -> Vec<u64> {
    let first = start & !(line - 1);
    let last = (start + (len - 1)) & !(line - 1);
    (0..=(last - first) / line)
        .map(|i| first + i * line)
        .collect()
}

fn expected_op(info: &ArchInfo, op: SyncOp, start: u64, len: u64, l: u64) -> SyncOp {
    let line = info.cache_line_size;
    let head = !start.is_multiple_of(line);
    let tail = !(start + len).is_multiple_of(line);
    let first = start & !(line - 1);
    let last = (start + len - 1) & !(line - 1);
    let op = match (op, info.invalidate_edges) {
        (SyncOp::Invalidate, EdgePolicy::CleanInvalidateEdges)
            if (l == first && head) || (l == last && tail) =>
        {
            SyncOp::CleanInvalidate
        }
        (SyncOp::Invalidate, EdgePolicy::CleanInvalidateAllIfUnaligned) if head || tail => {
            SyncOp::CleanInvalidate
        }
        (o, _) => o,
    };
    if op == SyncOp::Invalidate && !info.line_invalidate {
        SyncOp::CleanInvalidate
    } else {
        op
    }
}

fn range_cases(line: u64) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    for base in [0x10_0000u64, 0xffff_ffff_0000_0000] {
        for off in [0, 1, line / 2, line - 1] {
            for len in [
                1,
                line - 1,
                line,
                line + 1,
                2 * line,
                3 * line + 5,
                17 * line,
            ] {
                v.push((base + off, len));
            }
        }
    }
    v
}

/// Cache programs touch exactly the lines of the range (first rounded down,
/// last rounded up), once each, ascending, with the arch's partial-line
/// policy; `StolenRam` is RAM; batches keep per-range ops and one barrier.
pub fn cache_lines_exact(arch: &dyn ArchDma) {
    let n = arch.name();
    let info = arch.info();
    let line = arch.cache_line_size();
    for (start, len) in range_cases(line) {
        for op in OPS {
            let p = arch.cache_program(PhysAddr::new(start), len, SegKind::Ram, op);
            let p =
                p.unwrap_or_else(|e| panic!("{n}: cache_program({start:#x}, {len:#x}, {op}): {e}"));
            let stolen = arch.cache_program(
                PhysAddr::new(start),
                len,
                SegKind::StolenRam(ProviderId::new(1)),
                op,
            );
            assert_eq!(stolen.as_ref(), Ok(&p), "{n}: stolen RAM is RAM");
            assert_eq!(p.line_size(), line, "{n}");
            if info.always_coherent {
                assert!(
                    p.is_empty(),
                    "{n}: always coherent but maintenance for {start:#x}"
                );
                continue;
            }
            let lines: Vec<u64> = p.ops().iter().map(|o| o.line.raw()).collect();
            assert_eq!(
                lines,
                expected_lines(start, len, line),
                "{n}: lines of {start:#x}+{len:#x}"
            );
            for o in p.ops() {
                assert_eq!(
                    o.op,
                    expected_op(info, op, start, len, o.line.raw()),
                    "{n}: {op} of {start:#x}+{len:#x}, line {}",
                    o.line
                );
            }
            let ev = p.events();
            assert_eq!(
                ev.last(),
                Some(&CacheEvent::Barrier),
                "{n}: completion barrier"
            );
            assert_eq!(
                ev.first() == Some(&CacheEvent::Barrier),
                info.fence_before,
                "{n}: leading barrier"
            );
            assert_eq!(
                ev.len(),
                p.ops().len() + 1 + usize::from(info.fence_before),
                "{n}"
            );
        }
    }
    // A batch: two ranges, one completion barrier.
    let mut b = CacheProgram::new(info);
    let r1 = b.push_range(PhysAddr::new(0x1010), 0x80, SegKind::Ram, SyncOp::Clean);
    let r2 = b.push_range(PhysAddr::new(0x9000), 1, SegKind::Ram, SyncOp::Clean);
    assert_eq!((r1, r2), (Ok(()), Ok(())), "{n}: batch");
    if !info.always_coherent {
        let mut want = expected_lines(0x1010, 0x80, line);
        want.extend(expected_lines(0x9000, 1, line));
        let got: Vec<u64> = b.ops().iter().map(|o| o.line.raw()).collect();
        assert_eq!(got, want, "{n}: batch lines");
        let barriers = b
            .events()
            .iter()
            .filter(|e| **e == CacheEvent::Barrier)
            .count();
        assert_eq!(
            barriers,
            1 + usize::from(info.fence_before),
            "{n}: one completion barrier per batch"
        );
    }
}

/// Zero-length ranges give an empty program that lowers to no bytes at all.
pub fn zero_length_no_code(arch: &dyn ArchDma) {
    let n = arch.name();
    for start in [0, 0x1010, u64::MAX] {
        for op in OPS {
            for kind in [SegKind::Ram, SegKind::StolenRam(ProviderId::new(2))] {
                let p = arch.cache_program(PhysAddr::new(start), 0, kind, op);
                let p = p.unwrap_or_else(|e| panic!("{n}: zero-length at {start:#x}: {e}"));
                assert!(
                    p.is_empty() && p.events().is_empty(),
                    "{n}: zero-length at {start:#x}"
                );
                assert_eq!(
                    arch.lower(&p),
                    Ok(Vec::new()),
                    "{n}: zero-length lowers to code"
                );
            }
        }
    }
    assert_eq!(
        arch.lower(&CacheProgram::new(arch.info())),
        Ok(Vec::new()),
        "{n}: empty batch"
    );
}

/// MMIO / peer BARs and device-private memory never get maintenance: a
/// typed refusal naming the range, on every arch.
pub fn mmio_never_maintained(arch: &dyn ArchDma) {
    let n = arch.name();
    for kind in [
        SegKind::PeerBar(ProviderId::new(7)),
        SegKind::DevicePrivate(ProviderId::new(8)),
    ] {
        for (start, len) in [
            (0x40_0000_0000u64, 0x1000u64),
            (0x40_0000_0010, 0),
            (0x40_0000_0010, 3),
        ] {
            for op in OPS {
                let phys = PhysAddr::new(start);
                assert_eq!(
                    arch.cache_program(phys, len, kind, op),
                    Err(DmaError::NotCacheMaintainable { phys, len, kind }),
                    "{n}: {kind} {op}"
                );
            }
        }
    }
}

fn decoder_for(arch: &dyn ArchDma, decoder: Option<Decoder>) -> Decoder {
    match decoder.or_else(|| builtin_decoder(arch.name())) {
        Some(d) => d,
        None => panic!(
            "{}: the kit has no decoder for this arch; pass one: \
             conformance_tests!(name, ctor, decoder = my_decode)",
            arch.name()
        ),
    }
}

fn check_decodes(arch: &dyn ArchDma, dec: Decoder, p: &CacheProgram, what: &str) {
    let n = arch.name();
    let code = arch
        .lower(p)
        .unwrap_or_else(|e| panic!("{n}: lowering {what}: {e}"));
    if p.is_empty() {
        assert!(
            code.is_empty(),
            "{n}: empty program {what} lowered to {} bytes",
            code.len()
        );
    }
    let ev = dec(&code).unwrap_or_else(|e| panic!("{n}: decoding {what}: {e}"));
    let want = p.events();
    if let Some(i) = (0..ev.len().max(want.len())).find(|&i| ev.get(i) != want.get(i)) {
        panic!(
            "{n}: decoded code differs from the program for {what} at event {i}: \
             decoded {:?}, program {:?} ({} decoded, {} expected)",
            ev.get(i),
            want.get(i),
            ev.len(),
            want.len()
        );
    }
}

/// The lowered code, decoded back, is exactly the program: every line op
/// with its address and kind, and the barriers, in order. Covers unaligned
/// ranges, batches of discontiguous ranges, address 0 and the top line.
pub fn lowered_code_decodes_back(arch: &dyn ArchDma, decoder: Option<Decoder>) {
    let dec = decoder_for(arch, decoder);
    let line = arch.cache_line_size();
    for (start, len) in range_cases(line).into_iter().step_by(5) {
        for op in OPS {
            let p = arch.cache_program(PhysAddr::new(start), len, SegKind::Ram, op);
            let p = p.unwrap_or_else(|e| panic!("{}: {e}", arch.name()));
            check_decodes(arch, dec, &p, &format!("{op} {start:#x}+{len:#x}"));
        }
    }
    let mut b = CacheProgram::new(arch.info());
    for (s, l, op) in [
        (0u64, 1u64, SyncOp::Clean),
        (0x7fff_ffc0, 3 * line, SyncOp::Invalidate),
        (0x1234_5678_9abc_def0, 5, SyncOp::CleanInvalidate),
        (0x8000_0000_0000_0000, 2 * line, SyncOp::Clean),
        (u64::MAX - 2 * line + 1, 2 * line, SyncOp::Invalidate),
    ] {
        if let Err(e) = b.push_range(PhysAddr::new(s), l, SegKind::Ram, op) {
            panic!("{}: batch push {s:#x}: {e}", arch.name());
        }
    }
    check_decodes(arch, dec, &b, "a batch of discontiguous ranges");
    // Every single-bit address and a deterministic spread of others, so
    // each immediate chunk of the address materialisation takes many values.
    let mut bits = CacheProgram::new(arch.info());
    let mut spread = CacheProgram::new(arch.info());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for k in 0..64u32 {
        let op = OPS[(k % 3) as usize];
        for a in [1u64 << k, (1 << 63) | (1 << k)] {
            if let Err(e) = bits.push_range(PhysAddr::new(a), 1, SegKind::Ram, op) {
                panic!("{}: bit {k}: {e}", arch.name());
            }
        }
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 1 + (x >> 60) * line;
        let start = x.min(u64::MAX - len);
        if let Err(e) = spread.push_range(PhysAddr::new(start), len, SegKind::Ram, op) {
            panic!("{}: spread {start:#x}: {e}", arch.name());
        }
    }
    check_decodes(arch, dec, &bits, "single-bit addresses");
    check_decodes(arch, dec, &spread, "spread addresses");
}

static FOREIGN: ArchInfo = ArchInfo {
    name: "kit-foreign",
    cache_line_size: 32,
    default_coherent: false,
    always_coherent: false,
    p2p: P2pSupport::Full,
    mem_encrypt_bit: None,
    sync: SyncRules::CLEAN_THEN_INVALIDATE,
    invalidate_edges: EdgePolicy::Plain,
    line_invalidate: true,
    fence_before: false,
};

/// A program built for another arch's table row is refused, not lowered
/// with the wrong line size.
pub fn foreign_program_refused(arch: &dyn ArchDma) {
    let n = arch.name();
    let p = CacheProgram::build(
        &FOREIGN,
        PhysAddr::new(0x1000),
        64,
        SegKind::Ram,
        SyncOp::Clean,
    );
    let p = p.unwrap_or_else(|e| panic!("kit: {e}"));
    assert!(
        matches!(arch.lower(&p), Err(DmaError::ArchLowering { arch: a, .. }) if a == n),
        "{n}: lowered a program built for kit-foreign"
    );
}

/// A range over the program bound is refused with a typed error before
/// anything is allocated (always-coherent arches: empty program).
pub fn huge_range_refused(arch: &dyn ArchDma) {
    let n = arch.name();
    let len = (MAX_PROGRAM_LINES + 1) * arch.cache_line_size();
    let r = arch.cache_program(PhysAddr::new(0), len, SegKind::Ram, SyncOp::Clean);
    if arch.info().always_coherent {
        assert!(matches!(r, Ok(ref p) if p.is_empty()), "{n}: {r:?}");
    } else {
        assert!(
            matches!(r, Err(DmaError::OutOfMemory { .. })),
            "{n}: huge range: {r:?}"
        );
    }
}

/// The table row is self-consistent.
pub fn table_sane(arch: &dyn ArchDma) {
    let n = arch.name();
    let info = arch.info();
    assert_eq!(info.name, n);
    assert!(!n.is_empty());
    let l = info.cache_line_size;
    assert!(
        l.is_power_of_two() && (16..=4096).contains(&l),
        "{n}: cache line {l}"
    );
    assert_eq!(arch.cache_line_size(), l, "{n}");
    if let Some(b) = info.mem_encrypt_bit {
        assert!((12..64).contains(&b), "{n}: encryption bit {b}");
    }
}

/// Bad dma-ranges are rejected when the device is described, with the
/// offending windows: overlapping, empty, wrapping.
pub fn bad_dma_ranges_rejected(arch: &dyn ArchDma) {
    let n = arch.name();
    let m = DmaMask::BITS_64;
    let a = w(0, 0x1_0000, 0x2000);
    let b = w(0x1000, 0x10_0000, 0x1000);
    assert!(
        matches!(
            ArchDevice::from_windows([a, b], true, m),
            Err(WindowError::Overlap { .. })
        ),
        "{n}: overlapping cpu side"
    );
    let c = w(0x10_0000, 0x1_1000, 0x1000);
    assert!(
        matches!(
            ArchDevice::from_windows([a, c], true, m),
            Err(WindowError::Overlap { .. })
        ),
        "{n}: overlapping bus side"
    );
    let wrap = w(u64::MAX, 0, 2);
    assert_eq!(
        ArchDevice::from_windows([wrap], true, m).err(),
        Some(WindowError::Wraps { window: wrap }),
        "{n}"
    );
    let empty = w(0x1000, 0x1000, 0);
    assert_eq!(
        ArchDevice::from_windows([empty], true, m).err(),
        Some(WindowError::Empty { window: empty }),
        "{n}"
    );
    // A device without dma-ranges reaches nothing.
    let none = ArchDevice::new(WindowMap::empty(), true, m);
    assert_eq!(
        arch.ram_to_bus(&none, PhysAddr::new(0x1000), 1, DmaAttrs::empty()),
        Err(DmaError::NotTranslatable {
            phys: PhysAddr::new(0x1000),
            len: 1
        }),
        "{n}: empty dma-ranges"
    );
}
