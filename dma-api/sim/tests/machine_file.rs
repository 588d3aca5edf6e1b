//! Machine-file parsing: the reference machine loads, and bad input is
//! rejected with the file, line and field named.

use dma_api::memmap::RangeKind;
use dma_api::types::{PhysAddr, SegKind};
use dma_api::Bdf;
use dma_sim::machine::{ArchName, Machine, REFERENCE_TOML};

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

#[test]
fn reference_machine_loads() {
    let m = Machine::reference().unwrap();
    assert_eq!(m.name, "reference-server");
    assert_eq!(m.arch, ArchName::X86_64);
    assert_eq!(m.topology.len(), 15);
    m.check_invariants().unwrap();
    let nvme0 = m.topology.lookup(bdf("03:00.0")).unwrap();
    let st = m.p2pmem.stats(nvme0).unwrap();
    assert_eq!(st.size, 64 << 20);
    assert_eq!(st.available, 64 << 20);
    assert!(st.published);
    let apu = m.topology.lookup(bdf("00:08.0")).unwrap();
    let (r, k) = m.memmap.kind_of(PhysAddr::new(0x8000_1000)).unwrap();
    assert_eq!(k, SegKind::StolenRam(apu.provider_id()));
    assert_eq!(r.size, 512 << 20);
    let gpu = m.topology.lookup(bdf("06:00.0")).unwrap();
    let (r, _) = m
        .memmap
        .kind_of(PhysAddr::new(0x50_0000_0000 + 12345))
        .unwrap();
    assert_eq!(
        r.kind,
        RangeKind::Bar {
            provider: gpu.provider_id(),
            bar: 1
        }
    );
    assert_eq!(r.size, 64 << 30);
    assert_eq!(m.memmap.ram_bytes(), (2 << 30) + (60 << 30));
}

fn err_of(src: &str) -> dma_sim::machine::MachineError {
    Machine::from_toml_str("bad.toml", src).unwrap_err()
}

fn line_of(src: &str, needle: &str) -> usize {
    src.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn malformed_toml_names_line() {
    let src = "[machine]\nname = \"x\"\narch = \"x86_64\"\n[[device]]\nbdf = \n";
    let e = err_of(src);
    assert_eq!(e.file, "bad.toml");
    assert_eq!(e.line, 5, "{e}");
    assert!(e.to_string().starts_with("bad.toml:5:"), "{e}");
}

#[test]
fn unknown_field_and_arch() {
    let src = "[machine]\nname = \"x\"\narch = \"vax\"\n";
    let e = err_of(src);
    assert_eq!((e.line, e.field.as_str()), (3, "machine.arch"), "{e}");
    assert!(e.message.contains("x86_64") && e.message.contains("s390x"));
    let src = "[machine]\nname = \"x\"\narch = \"arm64\"\nflavour = 1\n";
    let e = err_of(src);
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("unknown field"), "{e}");
}

fn with_reference_edit(from: &str, to: &str) -> String {
    assert!(REFERENCE_TOML.contains(from), "{from}");
    REFERENCE_TOML.replacen(from, to, 1)
}

#[test]
fn duplicate_bdf() {
    let src = with_reference_edit("bdf = \"0000:04:00.0\"", "bdf = \"0000:03:00.0\"");
    let e = err_of(&src);
    assert_eq!(e.field, "device[8].bdf", "{e}");
    assert_eq!(e.line, line_of(&src, "name = \"nvme1\"") - 1, "{e}");
    assert!(e.message.contains("duplicate device 0000:03:00.0"), "{e}");
}

#[test]
fn dangling_parent_and_cycle() {
    let src = with_reference_edit("parent = \"0000:02:01.0\"", "parent = \"0000:09:01.0\"");
    let e = err_of(&src);
    assert_eq!(e.field, "device[8].parent", "{e}");
    assert_eq!(e.line, line_of(&src, "0000:09:01.0"));
    assert!(e.message.contains("does not exist"), "{e}");

    // 01:00.0's parent becomes 02:00.0, whose parent is 01:00.0.
    let src = with_reference_edit(
        "kind = \"switch_upstream\"\nparent = \"0000:00:01.0\"",
        "kind = \"switch_upstream\"\nparent = \"0000:02:00.0\"",
    );
    let e = err_of(&src);
    assert!(e.message.contains("cycle"), "{e}");
    assert!(e.field.ends_with(".parent"), "{e}");
}

#[test]
fn overlapping_and_outside_bars() {
    let src = with_reference_edit(
        "{ index = 0, addr = 0xc000_4000, size = \"16K\", mem64 = true }",
        "{ index = 0, addr = 0xc000_0000, size = \"16K\", mem64 = true }",
    );
    let e = err_of(&src);
    assert_eq!(e.field, "device[8].bars[0]", "{e}");
    assert_eq!(
        e.line,
        line_of(&src, "bars = [{ index = 0, addr = 0xc000_0000")
    );
    assert!(e.message.contains("overlaps"), "{e}");

    let src = with_reference_edit("addr = 0xc000_8000", "addr = 0xb000_0000");
    let e = err_of(&src);
    assert!(e.message.contains("outside every MMIO window"), "{e}");
    assert_eq!(e.line, line_of(&src, "0xb000_0000"));

    let src = with_reference_edit(
        "addr = 0xc000_8000, size = \"16K\"",
        "addr = 0xc000_8000, size = \"12K\"",
    );
    let e = err_of(&src);
    assert!(e.message.contains("power of two"), "{e}");
}

#[test]
fn absurd_sizes_and_overlapping_windows() {
    let src = with_reference_edit("size = \"60GiB\"", "size = \"0xffff_ffff_ffff_ffff\"");
    let e = err_of(&src);
    assert_eq!(e.field, "ram[1].size", "{e}");
    assert!(e.message.contains("absurd"), "{e}");

    let src = with_reference_edit(
        "{ cpu = 0x40_0000_0000, size = 0x40_0000_0000 }",
        "{ cpu = 0xd000_0000, size = 0x4000_0000 }",
    );
    let e = err_of(&src);
    assert_eq!(e.field, "host_bridge[0].mmio", "{e}");
    assert!(e.message.contains("overlap"), "{e}");

    let src = with_reference_edit("start = 0x0\n", "start = -5\n");
    let e = err_of(&src);
    assert_eq!(e.field, "ram[0].start", "{e}");
    assert!(e.message.contains("negative"), "{e}");

    // Stolen RAM overlapping declared RAM.
    let src = with_reference_edit("start = 0x8000_0000", "start = 0x4000_0000");
    let e = err_of(&src);
    assert!(e.field.ends_with("stolen_ram"), "{e}");
    assert!(e.message.contains("overlaps"), "{e}");
}

#[test]
fn acs_and_kind_errors() {
    let src = with_reference_edit("acs_ctrl = \"SV|UF\"", "acs_ctrl = \"SV|DT\"");
    let e = err_of(&src);
    assert!(e.field.ends_with("acs_ctrl"), "{e}");
    assert!(e.message.contains("DT"), "{e}");
    let src = with_reference_edit("kind = \"rc_endpoint\"", "kind = \"gpu\"");
    let e = err_of(&src);
    assert!(e.field.ends_with("kind"), "{e}");
    assert!(e.message.contains("root_port"), "{e}");
}

#[test]
fn p2pmem_errors() {
    let src = with_reference_edit(
        "p2pmem = [{ bar = 2, publish = true }]",
        "p2pmem = [{ bar = 4, publish = true }]",
    );
    let e = err_of(&src);
    assert_eq!(e.field, "device[7].p2pmem[0]", "{e}");
    assert!(e.message.contains("no BAR 4"), "{e}");
    let src = with_reference_edit(
        "p2pmem = [{ bar = 2, publish = true }]",
        "p2pmem = [{ bar = 2, offset = \"64M\" }]",
    );
    let e = err_of(&src);
    assert!(e.message.contains("does not fit"), "{e}");
}

#[test]
fn never_panics_on_garbage() {
    for src in ["", "[[device]]", "machine = 5", "[machine]\nname=1", "\u{0}\u{ffff}", "[machine]\nname='a'\narch='x86_64'\n[[device]]\nbdf='zz'\nkind='endpoint'\nvendor=1\ndevice=1\n"] {
        assert!(Machine::from_toml_str("g.toml", src).is_err());
    }
}

#[test]
fn every_example_machine_and_the_doc_example_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/machines");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let m = Machine::from_path(&p).unwrap_or_else(|e| panic!("{e}"));
            m.check_invariants().unwrap();
            n += 1;
        }
    }
    assert!(n >= 3);
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/machine-format.md"),
    )
    .unwrap();
    let example = doc
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let m = Machine::from_toml_str("machine-format.md", example).unwrap();
    assert_eq!(m.topology.len(), 2);
}

#[test]
fn arm64_offsets_and_aliases() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/machines");
    let m = Machine::from_path(&dir.join("arm64-soc.toml")).unwrap();
    let nvme0 = m.topology.lookup(bdf("0000:03:00.0")).unwrap();
    let r = &m.p2pmem.resources(nvme0)[0];
    assert_eq!(r.phys.raw(), 0x6_0400_0000);
    assert_eq!(r.bus.raw(), 0xc400_0000);
    let g = m.iommu_groups();
    let a = g.group_of(m.topology.lookup(bdf("0001:02:00.0")).unwrap());
    assert_eq!(
        a,
        g.group_of(m.topology.lookup(bdf("0001:01:00.0")).unwrap())
    );
    assert_eq!(
        a,
        g.group_of(m.topology.lookup(bdf("0001:02:01.0")).unwrap())
    );
}

#[test]
fn machine_hot_plug_keeps_memory_map_in_sync() {
    use dma_api::topology::{Bar, BarSpace, DeviceRecord, PortType};
    let mut m = Machine::reference().unwrap();
    let g0 = m.topology.generation();
    let nvme0 = m.topology.lookup(bdf("03:00.0")).unwrap();
    let dsp0 = m.topology.lookup(bdf("02:00.0")).unwrap();
    let gone = m.hot_remove(dsp0).unwrap();
    assert_eq!(gone, vec![dsp0, nvme0]);
    assert!(m.topology.generation() > g0);
    assert!(m.memmap.kind_of(PhysAddr::new(0x40_0000_0000)).is_none());
    assert!(m.p2pmem.stats(nvme0).is_none());
    m.check_invariants().unwrap();
    // Re-add the port and a drive whose BAR reuses the freed range.
    let mut port = DeviceRecord::new(
        bdf("02:00.0"),
        PortType::SwitchDownstream,
        Some(bdf("01:00.0")),
    );
    port.vendor = 0x10b5;
    m.hot_add(port).unwrap();
    let mut d = DeviceRecord::new(bdf("03:00.0"), PortType::Endpoint, Some(bdf("02:00.0")));
    d.bars.push(Bar {
        index: 0,
        addr: PhysAddr::new(0x40_0000_0000),
        size: 1 << 20,
        space: BarSpace::Mem,
        is_64: true,
        prefetchable: false,
    });
    let id = m.hot_add(d.clone()).unwrap();
    assert_eq!(
        m.memmap.kind_of(PhysAddr::new(0x40_0000_0000)).unwrap().1,
        SegKind::PeerBar(id.provider_id())
    );
    m.check_invariants().unwrap();
    // A BAR on top of RAM is refused; the machine is unchanged.
    let mut e = DeviceRecord::new(bdf("04:00.1"), PortType::Endpoint, Some(bdf("02:01.0")));
    e.bars.push(Bar {
        addr: PhysAddr::new(0x10_0000),
        ..d.bars[0]
    });
    let mut m2 = m.clone();
    // The host bridge window check fires first for a BAR outside the windows.
    assert!(m2
        .hot_add(e)
        .unwrap_err()
        .contains("outside every MMIO window"));
    m2.check_invariants().unwrap();
}

/// A number of the wrong TOML type is refused at its line with what a
/// number may be (numbers used to be an untagged enum, whose error named
/// no form).
#[test]
fn a_number_of_the_wrong_type_says_what_a_number_is() {
    let src = "[machine]\nname = \"x\"\narch = \"x86_64\"\n[[ram]]\nstart = 0\nsize = true\n";
    let e = err_of(src);
    assert_eq!(e.line, 6, "{e}");
    assert_eq!(
        e.message,
        "invalid type: boolean `true`, expected a number: a TOML integer or a string such as \"0x1000\" or \"4K\"",
        "{e}"
    );
    let src = "[machine]\nname = \"x\"\narch = \"x86_64\"\n[[ram]]\nstart = 1.5\nsize = 4096\n";
    let e = err_of(src);
    assert_eq!(e.line, 5, "{e}");
    assert!(
        e.message.starts_with("invalid type: floating point `1.5`"),
        "{e}"
    );
}

/// The paths of numbers are formatted only on error; each still names its
/// field exactly.
#[test]
fn number_errors_name_their_field_path() {
    let src = with_reference_edit("size = \"60GiB\"", "size = \"60GB\"");
    assert_eq!(err_of(&src).field, "ram[1].size");
    let src = with_reference_edit("vendor = 0x10b5", "vendor = 0x10b5_0");
    let e = err_of(&src);
    assert!(
        e.field.starts_with("device[") && e.field.ends_with("].vendor"),
        "{e}"
    );
    assert!(e.message.contains("is above the maximum 0xffff"), "{e}");
}
