//! The checking logic of every cargo-fuzz target in `fuzz/`, as plain
//! functions over the raw input bytes.
//!
//! The fuzz crate is outside the workspace (cargo-fuzz needs nightly and
//! sanitizers), so each `fuzz/fuzz_targets/<name>.rs` is a one-line
//! `fuzz_target!` calling the function of the same name here, and
//! `tests/tests/fuzz_corpus.rs` runs the same functions in the ordinary
//! `cargo test --workspace` over the checked-in seeds (`fuzz/seeds/<name>/`)
//! and a seeded generator. Every function panics (assert) on a violated
//! invariant and returns normally otherwise, whatever the input.

use dma_api::p2p::calc_map_type_and_dist;
use dma_api::Bdf;
use dma_pci::config::{parse_config, walk_caps, walk_ext_caps, HostBridgeId};
use dma_pci::topology::acs_param::{
    apply_at_enumeration, apply_config_acs, apply_disable_acs_redir, parse_config_acs,
    parse_disable_acs_redir, AcsEnumeration, AcsSetting, ApplyError, DevSpec,
};
use dma_pci::topology::{Acs, AcsCap, CpuInfo, DeviceRecord, HostBridgeRecord, PortType, Topology};
use dma_sim::machine::parse::parse_split;
use dma_sim::machine::Machine;
use dma_sim::sysfs::{
    parse_device_path, parse_iomem, parse_memmap_entry, parse_resource, DevicePath,
};
use scatterlist::{Pfn, ProviderId, SegKind, SgAppendTable, SgTable, PAGE_SIZE};

/// A fuzz target's checking function.
pub type Check = fn(&[u8]);

/// Every target: `(name, check)`; the name is the `[[bin]]` name in
/// `fuzz/Cargo.toml` and the seed directory `fuzz/seeds/<name>/`.
pub const TARGETS: &[(&str, Check)] = &[
    ("bdf_parse", bdf_parse),
    ("config_space", config_space),
    ("sysfs_resource", sysfs_resource),
    ("machine_file", machine_file),
    ("sg_from_pages", sg_from_pages),
    ("sysfs_ram", sysfs_ram),
    ("acs_param", acs_param),
    ("device_path", device_path),
    ("dma_ops", dma_ops),
    ("pgtable_ops", pgtable_ops),
    ("iova_ops", iova_ops),
    ("arch_translate", arch_translate),
    ("sg_append", sg_append),
    ("pci_ids", pci_ids),
];

/// A whole machine and an operation sequence over it
/// (`dma_sim::fuzzing::FuzzCase`): every invariant of
/// `dma_sim::fuzzing` after every step, checked through the fabric.
pub fn dma_ops(data: &[u8]) {
    dma_sim::fuzzing::check_bytes(data);
}

/// Every page-table format and page size against a model; the hardware
/// walker and the writer agree with it (`dma_sim::fuzzing::pgtable_ops`).
pub fn pgtable_ops(data: &[u8]) {
    dma_sim::fuzzing::pgtable_ops::check(data);
}

/// The IOVA allocator against a model of drivers/iommu/iova.c
/// (`dma_sim::fuzzing::iova_ops`).
pub fn iova_ops(data: &[u8]) {
    dma_sim::fuzzing::iova_ops::check(data);
}

/// Random windows and masks: translation, round trips and typed errors,
/// every arch backend (`dma_sim::fuzzing::arch_translate`).
pub fn arch_translate(data: &[u8]) {
    dma_sim::fuzzing::arch_translate::check(data);
}

/// Scatterlist appends, chains and splits against a byte-stream model
/// (`dma_sim::fuzzing::sg_append`).
pub fn sg_append(data: &[u8]) {
    dma_sim::fuzzing::sg_append::check(data);
}

/// The BDF parser never panics, and anything it accepts prints back to a
/// string that parses to the same address.
pub fn bdf_parse(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(bdf) = s.parse::<Bdf>() {
            let again: Bdf = bdf.to_string().parse().expect("printed BDF must parse");
            assert_eq!(bdf, again);
        }
    }
}

/// The config-space decoder decodes any bytes or fails with a typed error,
/// and every capability it reports lies inside the buffer.
pub fn config_space(data: &[u8]) {
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
    for w in [
        walk_caps(data, 0x34).caps.len(),
        walk_ext_caps(data).caps.len(),
    ] {
        assert!(w <= 480);
    }
}

/// The sysfs `resource` parser parses any text or fails with a typed error
/// naming a real line; every range is non-empty and does not wrap.
pub fn sysfs_resource(data: &[u8]) {
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
}

/// Any machine file the TOML parser accepts satisfies the machine's
/// invariants, computes IOMMU groups and routes every pair of its first 16
/// functions; and parsing it in pieces (split at `[[device]]` headers)
/// gives exactly the whole-document parse, spans and errors included.
pub fn machine_file(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let show = |r: Result<dma_sim::machine::file::MachineFile, _>| match r {
        Ok(f) => format!("{f:?}"),
        Err(e) => format!("{e:?}"),
    };
    let whole = show(parse_split(src, usize::MAX, 0, 1));
    for (piece, threads) in [(0, 1), (64, 2)] {
        assert_eq!(
            show(parse_split(src, 0, piece, threads)),
            whole,
            "pieces of {piece} bytes differ from the whole parse"
        );
    }
    let Ok(m) = Machine::from_toml_str("fuzz.toml", src) else {
        return;
    };
    m.check_invariants()
        .expect("accepted machine must re-validate");
    let _ = m.iommu_groups();
    let ids: Vec<_> = m.topology.devices().map(|(id, _)| id).take(16).collect();
    for &p in &ids {
        for &c in &ids {
            calc_map_type_and_dist(&m.topology, p, c).expect("present devices route");
        }
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let n = self.0.len().min(8);
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(b)
    }
    fn u8(&mut self) -> u8 {
        let v = self.0.first().copied().unwrap_or(0);
        self.0 = self.0.get(1..).unwrap_or(&[]);
        v
    }
}

fn kind(k: u8) -> SegKind {
    match k % 4 {
        0 => SegKind::Ram,
        1 => SegKind::PeerBar(ProviderId::new(u32::from(k >> 2) % 3)),
        2 => SegKind::StolenRam(ProviderId::new(1)),
        _ => SegKind::DevicePrivate(ProviderId::new(2)),
    }
}

/// The bytes `[offset, offset + size)` of the pages, as coalesced ranges.
fn expected(pages: &[(Pfn, SegKind)], offset: u64, size: u64) -> Vec<(u64, u64)> {
    let mut left = size;
    let mut off = offset;
    let mut v = Vec::new();
    for (p, _) in pages {
        if left == 0 {
            break;
        }
        let take = (PAGE_SIZE - off).min(left);
        v.push((p.raw() * PAGE_SIZE + off, take));
        left -= take;
        off = 0;
    }
    coalesce(v)
}

fn coalesce(v: impl IntoIterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, l) in v {
        match out.last_mut() {
            Some((ps, pl)) if ps.checked_add(*pl) == Some(s) => *pl += l,
            _ => out.push((s, l)),
        }
    }
    out
}

fn check_table(t: &SgTable, pages: &[(Pfn, SegKind)], offset: u64, size: u64, max_segment: u64) {
    assert_eq!(t.total_len(), size);
    assert_eq!(t.nents(), t.orig_nents());
    assert_eq!(t.iter().count(), t.orig_nents());
    let limit = (max_segment & !(PAGE_SIZE - 1)).min(scatterlist::MAX_SEGMENT_LIMIT);
    for e in t.iter() {
        assert!(
            !e.is_empty() && u64::from(e.len()) <= limit,
            "{e:?} limit {limit:#x}"
        );
        assert!(!e.is_chain());
    }
    let got = coalesce(t.iter().map(|e| (e.phys().raw(), u64::from(e.len()))));
    assert_eq!(got, expected(pages, offset, size));
    assert!(t.last().is_some_and(|e| e.is_end()));
}

/// The page builder (`SgTable::from_pages_kinds`, Linux
/// `sg_alloc_table_from_pages_segment`) and a two-step append: decoded pfns,
/// kinds, offset, size and max_segment never panic, and every table built
/// covers exactly the requested bytes, in order, with no entry above
/// max_segment and the kernel's counts.
pub fn sg_from_pages(data: &[u8]) {
    let mut inp = Input(data);
    let offset = inp.u64() % (2 * PAGE_SIZE); // sometimes out of page on purpose
    let size = inp.u64() % (1 << 24);
    let max_segment = match inp.u8() % 4 {
        0 => inp.u64(),
        1 => u64::from(u32::MAX),
        _ => u64::from(inp.u8()) * PAGE_SIZE + u64::from(inp.u8()),
    };
    let mode = inp.u8();
    let mut pages = Vec::new();
    let mut pfn = inp.u64();
    while !inp.0.is_empty() && pages.len() < 4096 {
        let step = inp.u8();
        let run = 1 + u64::from(inp.u8() % 64);
        if mode & 1 == 1 && step == 0xff {
            pfn = inp.u64(); // occasionally huge frame numbers
        }
        let k = kind(if mode & 2 == 2 { inp.u8() } else { 0 });
        for _ in 0..run {
            pages.push((Pfn::new(pfn), k));
            pfn = pfn.wrapping_add(1);
        }
        pfn = pfn.wrapping_add(u64::from(step % 4));
    }

    // The RAM fast path for the decoded size and for every page (a random
    // size rarely fits the pages, and a small one never reaches the block
    // kernels, which take 65 pages at a time).
    let all = (pages.len() as u64 * PAGE_SIZE).saturating_sub(offset);
    for size in [size, all] {
        ram_fast_path_agrees(&pages, offset, size, max_segment, mode);
    }

    if let Ok(t) = SgTable::from_pages_kinds(&pages, offset, size, max_segment) {
        check_table(&t, &pages, offset, size, max_segment);
        // Every entry has one kind, that of each page it covers.
        for e in t.iter() {
            let first = e.phys().raw() / PAGE_SIZE;
            assert!(pages
                .iter()
                .any(|&(p, k)| p.raw() == first && k == e.kind()));
        }
    }

    // Two-step append: pages split at a page boundary, whole pages first.
    let cut = (usize::from(mode) * 7) % (pages.len() + 1);
    if cut > 0 && cut < pages.len() && offset < PAGE_SIZE {
        let first = cut as u64 * PAGE_SIZE - offset;
        if size > first {
            let mut a = SgAppendTable::new();
            let before = a.clone();
            match a.append_pages_kinds(&pages[..cut], offset, first, max_segment, pages.len() - cut)
            {
                Ok(()) => {
                    if a.append_pages_kinds(&pages[cut..], 0, size - first, max_segment, 0)
                        .is_ok()
                    {
                        let t = a.into_table();
                        check_table(&t, &pages, offset, size, max_segment);
                    }
                }
                Err(_) => assert_eq!(a, before),
            }
        }
    }
}

/// The RAM-only builders (`SgTable::from_pages`, `append_pages`), which scan
/// frame numbers with the block kernels (SSE2, or AVX2 where the CPU has
/// it), give exactly the tables and errors of the page-by-page builders
/// given the same frames as RAM pages: one shot, and appended in two steps.
fn ram_fast_path_agrees(
    pages: &[(Pfn, SegKind)],
    offset: u64,
    size: u64,
    max_segment: u64,
    mode: u8,
) {
    let pfns: Vec<Pfn> = pages.iter().map(|&(p, _)| p).collect();
    let ram: Vec<(Pfn, SegKind)> = pfns.iter().map(|&p| (p, SegKind::Ram)).collect();
    assert_eq!(
        SgTable::from_pages(&pfns, offset, size, max_segment),
        SgTable::from_pages_kinds(&ram, offset, size, max_segment),
        "RAM fast path, one shot"
    );
    let cut = (usize::from(mode) * 13) % (pfns.len() + 1);
    if offset >= PAGE_SIZE || cut == 0 {
        return;
    }
    let first = (cut as u64 * PAGE_SIZE - offset).min(size);
    let (mut fast, mut slow) = (SgAppendTable::new(), SgAppendTable::new());
    let left = pfns.len() - cut;
    let r = fast.append_pages(&pfns[..cut], offset, first, max_segment, left);
    assert_eq!(
        r,
        slow.append_pages_kinds(&ram[..cut], offset, first, max_segment, left),
        "RAM fast path, first append"
    );
    assert_eq!(fast, slow);
    if r.is_ok() && size > first {
        assert_eq!(
            fast.append_pages(&pfns[cut..], 0, size - first, max_segment, 0),
            slow.append_pages_kinds(&ram[cut..], 0, size - first, max_segment, 0),
            "RAM fast path, second append"
        );
        assert_eq!(fast.into_table(), slow.into_table());
    }
}

/// The RAM parsers: a `firmware/memmap` entry (the input split into start,
/// end and type at NUL bytes) and `/proc/iomem` text. Every range is
/// non-empty and does not wrap; iomem ranges come back sorted with gaps
/// between them (merged), and bad lines name a real line.
pub fn sysfs_ram(data: &[u8]) {
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
        assert!(entry
            .range
            .start
            .checked_add(entry.range.size - 1)
            .is_some());
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
}

// ---------------------------------------------------------------- acs_param

/// A device specifier in the kernel's syntax (the library has no formatter;
/// this one is canonical: full BDF, lowercase hex, no subsystem IDs).
fn fmt_spec(s: &DevSpec) -> String {
    match s {
        DevSpec::Path { start, steps } => {
            let mut out = start.to_string();
            for (d, f) in steps {
                out += &format!("/{d:x}.{f:x}");
            }
            out
        }
        DevSpec::Id { vendor, device } => format!("pci:{vendor:x}:{device:x}"),
    }
}

/// `config_acs` flags: seven characters, DT..SV, `x` where the mask is clear.
fn fmt_flags(mask: Acs, flags: Acs) -> String {
    (0..7)
        .rev()
        .map(|bit| {
            let b = Acs::from_bits_truncate(1 << bit);
            match (mask.contains(b), flags.contains(b)) {
                (false, _) => 'x',
                (true, false) => '0',
                (true, true) => '1',
            }
        })
        .collect()
}

fn fmt_disable(v: &[DevSpec]) -> String {
    v.iter().map(fmt_spec).collect::<Vec<_>>().join(";")
}

fn fmt_config(v: &[AcsSetting]) -> String {
    v.iter()
        .map(|s| format!("{}@{}", fmt_flags(s.mask, s.flags), fmt_spec(&s.spec)))
        .collect::<Vec<_>>()
        .join(";")
}

/// The fixed topology the parameters are applied to: two root ports (one
/// implementing every ACS bit, one only SV|RR|CR|UF), a switch below the
/// first whose downstream ports implement SV|TB|RR|CR|UF (no EC, no DT), a
/// multi-function endpoint with ACS (SV|RR only) and functions without the
/// capability. Firmware control values are subsets of the capability.
fn acs_topology() -> Topology {
    fn b(s: &str) -> Bdf {
        s.parse().expect("fixed BDF")
    }
    fn rec(
        bdf: &str,
        port: PortType,
        parent: Option<&str>,
        id: (u16, u16),
        acs: Option<(Acs, Acs)>,
    ) -> DeviceRecord {
        let mut r = DeviceRecord::new(b(bdf), port, parent.map(b));
        (r.vendor, r.device) = id;
        r.acs = acs.map(|(cap, ctrl)| AcsCap { cap, ctrl });
        r
    }
    let dsp = Acs::SV | Acs::TB | Acs::RR | Acs::CR | Acs::UF;
    let mut recs = vec![
        rec(
            "00:01.0",
            PortType::RootPort,
            None,
            (0x8086, 0x2030),
            Some((Acs::all(), Acs::SV | Acs::RR)),
        ),
        rec(
            "01:00.0",
            PortType::SwitchUpstream,
            Some("00:01.0"),
            (0x10b5, 0x8747),
            None,
        ),
        rec(
            "02:00.0",
            PortType::SwitchDownstream,
            Some("01:00.0"),
            (0x10b5, 0x8747),
            Some((dsp, Acs::empty())),
        ),
        rec(
            "02:01.0",
            PortType::SwitchDownstream,
            Some("01:00.0"),
            (0x10b5, 0x8747),
            Some((dsp, Acs::REQ_ISOLATION)),
        ),
        rec(
            "03:00.0",
            PortType::Endpoint,
            Some("02:00.0"),
            (0x144d, 0xa808),
            Some((Acs::SV | Acs::RR, Acs::SV)),
        ),
        rec(
            "03:00.1",
            PortType::Endpoint,
            Some("02:00.0"),
            (0x144d, 0xa808),
            Some((Acs::SV | Acs::RR, Acs::empty())),
        ),
        rec(
            "04:00.0",
            PortType::Endpoint,
            Some("02:01.0"),
            (0x10de, 0x2330),
            None,
        ),
        rec(
            "00:02.0",
            PortType::RootPort,
            None,
            (0x8086, 0x2031),
            Some((Acs::REQ_ISOLATION, Acs::SV)),
        ),
        rec(
            "05:00.0",
            PortType::Endpoint,
            Some("00:02.0"),
            (0x8086, 0x0b60),
            None,
        ),
    ];
    recs[4].multifunction = true;
    recs[5].multifunction = true;
    recs[8].untrusted = true;
    Topology::build(
        CpuInfo::default(),
        [HostBridgeRecord::new("hb0", 0, 0)],
        recs,
    )
    .expect("fixed ACS topology builds")
}

/// Every function's ACS capability (`None` without one), by BDF.
fn acs_state(t: &Topology) -> Vec<(Bdf, Option<AcsCap>)> {
    t.devices().map(|(_, d)| (d.bdf, d.acs)).collect()
}

/// Checks one application: it fails only for unparsable text, changes only
/// implemented bits (`allowed` further limits which bits may change),
/// reports exactly the devices it changed and bumps the generation once per
/// change.
fn check_apply(
    parsed: bool,
    value: &str,
    allowed: Acs,
    apply: impl FnOnce(
        &mut Topology,
        &str,
    ) -> Result<dma_pci::topology::acs_param::AcsApplied, ApplyError>,
) {
    let mut t = acs_topology();
    let before = acs_state(&t);
    let gen = t.generation();
    match apply(&mut t, value) {
        Err(ApplyError::Param(_)) => {
            assert!(!parsed, "{value:?} parses but apply rejects it");
            assert_eq!(acs_state(&t), before, "a rejected parameter changed ACS");
        }
        Err(ApplyError::Topology(e)) => panic!("{value:?}: topology refused: {e}"),
        Ok(applied) => {
            assert!(parsed, "{value:?} does not parse but apply accepts it");
            let after = acs_state(&t);
            let mut changed = Vec::new();
            for ((bdf, old), (bdf2, new)) in before.iter().zip(&after) {
                assert_eq!(bdf, bdf2);
                match (old, new) {
                    (None, None) => {}
                    (Some(o), Some(n)) => {
                        assert_eq!(o.cap, n.cap, "{bdf}: capability changed");
                        let diff = o.ctrl ^ n.ctrl;
                        assert!(
                            o.cap.contains(diff),
                            "{bdf}: {value:?} changed unimplemented bits {diff:?}"
                        );
                        assert!(
                            allowed.contains(diff),
                            "{bdf}: {value:?} changed {diff:?} outside {allowed:?}"
                        );
                        assert!(o.cap.contains(n.ctrl), "{bdf}: control beyond capability");
                        if !diff.is_empty() {
                            changed.push((*bdf, o.ctrl, n.ctrl));
                        }
                    }
                    _ => panic!("{bdf}: ACS capability appeared or vanished"),
                }
            }
            let mut reported = applied.changed.clone();
            reported.sort_by_key(|c| c.0);
            changed.sort_by_key(|c| c.0);
            assert_eq!(reported, changed, "{value:?}: reported changes differ");
            assert_eq!(t.generation() - gen, changed.len() as u64);
            t.check_invariants().expect("topology still valid");
        }
    }
}

/// The `pci=` ACS parameter parsers (`disable_acs_redir=` and
/// `config_acs=` values; a leading `disable_acs_redir=` or `config_acs=`
/// selects one, otherwise the input goes to both). No input panics; parsing
/// is deterministic; an accepted value prints (canonical formatter above)
/// to text that parses to the same entries; applying it to a fixed topology
/// never panics, succeeds exactly when it parses and changes only ACS bits
/// the port implements (only redirect bits, cleared, for
/// `disable_acs_redir`).
pub fn acs_param(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (redir, config) = if let Some(v) = text.strip_prefix("disable_acs_redir=") {
        (Some(v), None)
    } else if let Some(v) = text.strip_prefix("config_acs=") {
        (None, Some(v))
    } else {
        (Some(text), Some(text))
    };

    if let Some(v) = redir {
        let r = parse_disable_acs_redir(v);
        assert_eq!(r, parse_disable_acs_redir(v), "not deterministic");
        if let Ok(specs) = &r {
            let printed = fmt_disable(specs);
            assert_eq!(
                parse_disable_acs_redir(&printed).as_ref(),
                Ok(specs),
                "{v:?} printed as {printed:?}"
            );
        }
        check_apply(r.is_ok(), v, Acs::REDIRECT, apply_disable_acs_redir);
        // Clearing only: no bit may go from 0 to 1.
        let mut t = acs_topology();
        let before = acs_state(&t);
        if apply_disable_acs_redir(&mut t, v).is_ok() {
            for ((_, o), (bdf, n)) in before.iter().zip(acs_state(&t)) {
                if let (Some(o), Some(n)) = (o, n) {
                    assert!(o.ctrl.contains(n.ctrl), "{bdf}: disable_acs_redir set bits");
                }
            }
        }
    }
    if let Some(v) = config {
        let r = parse_config_acs(v);
        assert_eq!(r, parse_config_acs(v), "not deterministic");
        if let Ok(settings) = &r {
            for s in settings {
                assert!(s.mask.contains(s.flags), "{v:?}: flags outside mask");
                assert!(Acs::all().contains(s.mask));
            }
            let printed = fmt_config(settings);
            assert_eq!(
                parse_config_acs(&printed).as_ref(),
                Ok(settings),
                "{v:?} printed as {printed:?}"
            );
        }
        check_apply(r.is_ok(), v, Acs::all(), apply_config_acs);
    }

    // The enumeration-time computation with both parameters.
    for acs_enable in [false, true] {
        let mut t = acs_topology();
        let before = acs_state(&t);
        let e = AcsEnumeration {
            acs_enable,
            ats_disabled: data.len() % 2 == 1,
            disable_acs_redir: redir,
            config_acs: config,
        };
        let ok = apply_at_enumeration(&mut t, &e).is_ok();
        let parses = redir.is_none_or(|v| parse_disable_acs_redir(v).is_ok())
            && config.is_none_or(|v| parse_config_acs(v).is_ok());
        assert_eq!(ok, parses, "{text:?}: enumeration result vs parse");
        for ((_, o), (bdf, n)) in before.iter().zip(acs_state(&t)) {
            match (o, n) {
                (None, None) => {}
                (Some(o), Some(n)) => {
                    assert!(o.cap.contains(n.ctrl), "{bdf}: control beyond capability");
                    assert_eq!(o.cap, n.cap);
                }
                _ => panic!("{bdf}: ACS capability appeared or vanished"),
            }
        }
    }
}

// -------------------------------------------------------------- device_path

/// A path that carries exactly the facts of `p`.
fn fmt_device_path(p: &DevicePath) -> String {
    let mut s = String::from("/sys/devices");
    if let Some(h) = p.host_bridge {
        s += &format!("/{h}");
    }
    if let Some(parent) = p.parent {
        s += &format!("/{parent}");
    }
    s + &format!("/{}", p.bdf)
}

fn assert_valid_bdf(b: Bdf) {
    assert!(b.dev() <= 31 && b.func() <= 7, "{b:?}");
    assert_eq!(
        Bdf::new(b.domain(), b.bus(), b.dev(), b.func()),
        Some(b),
        "{b:?} does not rebuild"
    );
    let again: Bdf = b.to_string().parse().expect("printed BDF must parse");
    assert_eq!(again, b);
}

/// dma-sim's sysfs device-path parser (`parse_device_path`): no input
/// panics; parsing is deterministic and ignores empty components; every BDF
/// in a result is valid and prints back to itself, the host bridge prints
/// back to itself, and a canonical path built from the components parses
/// to the same value.
pub fn device_path(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let r = parse_device_path(path);
    assert_eq!(r, parse_device_path(path), "not deterministic");
    assert_eq!(
        r,
        parse_device_path(&format!("/{path}/")),
        "empty components"
    );
    let Some(p) = r else {
        return;
    };
    assert_valid_bdf(p.bdf);
    if let Some(parent) = p.parent {
        assert_valid_bdf(parent);
    }
    if let Some(h) = p.host_bridge {
        let again: HostBridgeId = h.to_string().parse().expect("printed host bridge parses");
        assert_eq!(again, h);
    }
    let printed = fmt_device_path(&p);
    assert_eq!(
        parse_device_path(&printed),
        Some(p),
        "{path:?} printed as {printed:?}"
    );
}

// ------------------------------------------------------------------ pci_ids

/// The PCI ID database parser (`unidma::pci_ids::PciIds::parse_bytes`): no
/// input panics; parsing is deterministic; an error's line and column lie
/// inside the input (the column at most one past the line's end); an
/// accepted database, written back in the `pci.ids` format, parses to the
/// same database, and every name it holds is non-empty without leading or
/// trailing blanks.
pub fn pci_ids(data: &[u8]) {
    use std::fmt::Write as _;
    use unidma::pci_ids::PciIds;
    let first = PciIds::parse_bytes(data);
    assert_eq!(
        first,
        PciIds::parse_bytes(data),
        "parsing is not deterministic"
    );
    match first {
        Err(e) => {
            let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
            assert!(
                e.line >= 1 && e.line <= lines.len(),
                "{e}: line out of range"
            );
            let line = lines[e.line - 1];
            let chars = String::from_utf8_lossy(line).chars().count();
            assert!(
                e.column >= 1 && e.column <= chars + 1,
                "{e}: column out of range for a line of {chars} characters"
            );
        }
        Ok(ids) => {
            let mut text = String::new();
            for (v, d, name) in ids.entries() {
                assert!(
                    !name.is_empty() && name.trim() == name,
                    "{v:04x}: name {name:?}"
                );
                let _ = match d {
                    None => writeln!(text, "{v:04x}  {name}"),
                    Some(d) => writeln!(text, "\t{d:04x}  {name}"),
                };
            }
            let again = PciIds::parse(&text)
                .unwrap_or_else(|e| panic!("the printed database does not parse: {e}\n{text}"));
            assert_eq!(again, ids, "the printed database parses differently");
        }
    }
}
