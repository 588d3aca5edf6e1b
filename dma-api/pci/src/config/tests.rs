//! Decoder tests over images built byte by byte, one per error path.

use super::*;
use crate::types::BusAddr;
use alloc::vec;
use alloc::vec::Vec;

fn root_port() -> ConfigBuilder {
    let mut b = ConfigBuilder::new(4096, 0x8086, 0x7a38, 0x060400, 0x81);
    b.revision(0x11).buses(0x00, 0x01, 0x05);
    b.cap(0x40, 0x01).pcie(0x60, 4).cap(0x80, 0x05);
    b.ext_cap(0x100, 0x0001).acs(0x148, 0x035f, 0x000c);
    b
}

#[test]
fn root_port_decodes_every_field() {
    let p = parse_config(root_port().bytes()).unwrap();
    assert_eq!(p.len, 4096);
    assert_eq!(p.header.vendor, 0x8086);
    assert_eq!(p.header.device, 0x7a38);
    assert_eq!(p.header.class, 0x060400);
    assert_eq!(p.header.revision, 0x11);
    assert_eq!(p.header.header_type, Some(HeaderType::Bridge));
    assert!(p.header.multifunction);
    assert_eq!(
        p.header.bridge_buses,
        Some(BridgeBuses {
            primary: 0,
            secondary: 1,
            subordinate: 5
        })
    );
    let ids: Vec<(u16, u8)> = p.caps.iter().map(|c| (c.offset, c.id)).collect();
    assert_eq!(ids, vec![(0x40, 0x01), (0x60, 0x10), (0x80, 0x05)]);
    assert_eq!(p.pcie_type(), Some(PcieType::RootPort));
    assert_eq!(p.pcie.map(|c| (c.offset, c.version)), Some((0x60, 2)));
    let ext: Vec<(u16, u16, u8)> = p
        .ext_caps
        .iter()
        .map(|c| (c.offset, c.id, c.version))
        .collect();
    assert_eq!(ext, vec![(0x100, 0x0001, 1), (0x148, 0x000d, 1)]);
    let acs = p.acs.unwrap();
    assert_eq!(acs.offset, 0x148);
    assert_eq!(
        acs.cap,
        AcsBits::SV | AcsBits::TB | AcsBits::RR | AcsBits::CR | AcsBits::UF | AcsBits::DT
    );
    assert_eq!(acs.egress_vector_bits, 0x03);
    assert_eq!(acs.ctrl, AcsBits::RR | AcsBits::CR);
    assert!(acs.redirects());
    assert!(p.issues.is_empty(), "{:?}", p.issues);
}

#[test]
fn endpoint_bars_decode_kind_and_bus_address() {
    let mut b = ConfigBuilder::new(256, 0x144d, 0xa808, 0x010802, 0x00);
    b.bar(0, 0x0000_e001) // I/O at 0xe000
        .bar(1, 0xfe00_0000) // 32-bit mem
        .bar(2, 0x8000_000c) // 64-bit prefetchable, low half
        .bar(3, 0x0000_0060) // high half
        .bar(5, 0x000c_0002); // below-1M
    let p = parse_config(b.bytes()).unwrap();
    assert_eq!(
        p.bars,
        vec![
            ConfigBar {
                index: 0,
                kind: BarKind::Io,
                prefetchable: false,
                addr: BusAddr::new(0xe000)
            },
            ConfigBar {
                index: 1,
                kind: BarKind::Mem32,
                prefetchable: false,
                addr: BusAddr::new(0xfe00_0000)
            },
            ConfigBar {
                index: 2,
                kind: BarKind::Mem64,
                prefetchable: true,
                addr: BusAddr::new(0x60_8000_0000)
            },
            ConfigBar {
                index: 5,
                kind: BarKind::Mem1M,
                prefetchable: false,
                addr: BusAddr::new(0xc_0000)
            },
        ]
    );
    assert_eq!(p.header.header_type, Some(HeaderType::Normal));
    assert!(!p.header.multifunction);
    assert_eq!(p.pcie, None);
    assert!(p.caps.is_empty() && p.ext_caps.is_empty() && p.issues.is_empty());
}

#[test]
fn odd_bars_are_issues_not_failures() {
    let mut b = ConfigBuilder::new(256, 1, 2, 0x060400, 0x01);
    b.bar(0, 0x1000_0006).bar(1, 0x2000_0004);
    let p = parse_config(b.bytes()).unwrap();
    assert_eq!(
        p.issues,
        vec![
            ConfigError::ReservedBarType {
                index: 0,
                value: 0x1000_0006
            },
            ConfigError::Bar64AtEnd { index: 1 }
        ]
    );
    assert_eq!(p.bars.len(), 2);
    assert_eq!(p.bars[0].kind, BarKind::Mem32);
    assert_eq!(p.bars[1].addr, BusAddr::new(0x2000_0000));
}

#[test]
fn short_header_and_absent_ids_are_errors() {
    let b = ConfigBuilder::new(4096, 0x8086, 0x1234, 0, 0);
    assert_eq!(
        parse_config(&b.bytes()[..63]),
        Err(ConfigError::Truncated {
            needed: 64,
            len: 63
        })
    );
    assert_eq!(
        parse_config(&[]),
        Err(ConfigError::Truncated { needed: 64, len: 0 })
    );
    for (v, d, id) in [
        (0xffff, 0xffff, 0xffff_ffffu32),
        (0, 0, 0),
        (0xffff, 0, 0x0000_ffff),
        (0, 0xffff, 0xffff_0000),
    ] {
        let b = ConfigBuilder::new(64, v, d, 0, 0);
        assert_eq!(parse_config(b.bytes()), Err(ConfigError::NoDevice { id }));
    }
}

#[test]
fn unknown_header_and_pcie_type_are_reported() {
    let mut b = ConfigBuilder::new(256, 1, 2, 0, 0x05);
    b.pcie(0x40, 0x3);
    let p = parse_config(b.bytes()).unwrap();
    assert_eq!(p.header.header_type, None);
    assert!(p.bars.is_empty() && p.caps.is_empty());
    assert_eq!(
        p.issues,
        vec![ConfigError::UnknownHeaderType { value: 0x05 }]
    );

    let mut b = ConfigBuilder::new(256, 1, 2, 0, 0x00);
    b.pcie(0x40, 0xb);
    let p = parse_config(b.bytes()).unwrap();
    assert_eq!(p.pcie.map(|c| c.type_raw), Some(0xb));
    assert_eq!(p.pcie_type(), None);
    assert_eq!(
        p.issues,
        vec![ConfigError::UnknownPcieType {
            offset: 0x40,
            value: 0xb
        }]
    );
}

#[test]
fn sixty_four_byte_read_keeps_header_and_reports_caps_truncated() {
    let full = root_port().build();
    let p = parse_config(&full[..64]).unwrap();
    assert_eq!(p.header.vendor, 0x8086);
    assert_eq!(p.header.header_type, Some(HeaderType::Bridge));
    assert!(p.header.multifunction);
    assert_eq!(p.pcie, None);
    assert_eq!(p.acs, None);
    assert!(p.caps_truncated());
    assert_eq!(
        p.issues,
        vec![ConfigError::Truncated {
            needed: 0x42,
            len: 64
        }]
    );
}

#[test]
fn conventional_256_bytes_has_no_ext_caps() {
    let full = root_port().build();
    let p = parse_config(&full[..256]).unwrap();
    assert_eq!(p.pcie_type(), Some(PcieType::RootPort));
    assert!(p.ext_caps.is_empty() && p.acs.is_none() && p.issues.is_empty());
    // Cut inside the first extended header: truncation, not silence.
    let p = parse_config(&full[..0x102]).unwrap();
    assert_eq!(
        p.issues,
        vec![ConfigError::Truncated {
            needed: 0x104,
            len: 0x102
        }]
    );
    // Cut inside the ACS registers.
    let p = parse_config(&full[..0x14c]).unwrap();
    assert_eq!(p.ext_caps.len(), 2);
    assert_eq!(p.acs, None);
    assert_eq!(
        p.issues,
        vec![ConfigError::Truncated {
            needed: 0x14e,
            len: 0x14c
        }]
    );
}

#[test]
fn std_walk_errors_name_offset_and_value() {
    // Pointer into the header.
    let mut b = ConfigBuilder::new(256, 1, 2, 0, 0);
    b.cap(0x40, 0x01).put8(0x41, 0x20);
    let w = walk_caps(b.bytes(), 0x34);
    assert_eq!(w.caps.len(), 1);
    assert_eq!(
        w.issues,
        vec![ConfigError::BadPointer {
            offset: 0x41,
            value: 0x20
        }]
    );
    // Loop 0x40 -> 0x50 -> 0x40.
    let mut b = ConfigBuilder::new(256, 1, 2, 0, 0);
    b.cap(0x40, 0x01).cap(0x50, 0x05).put8(0x51, 0x40);
    let w = walk_caps(b.bytes(), 0x34);
    assert_eq!(w.caps.len(), 2);
    assert_eq!(w.issues, vec![ConfigError::CapLoop { offset: 0x40 }]);
    // Self loop.
    let mut b = ConfigBuilder::new(256, 1, 2, 0, 0);
    b.cap(0x40, 0x01).put8(0x41, 0x40);
    assert_eq!(
        walk_caps(b.bytes(), 0x34).issues,
        vec![ConfigError::CapLoop { offset: 0x40 }]
    );
    // Unaligned pointer is masked like Linux and the walk goes on.
    let mut b = ConfigBuilder::new(256, 1, 2, 0, 0);
    b.cap(0x40, 0x01).cap(0x50, 0x10).put8(0x41, 0x53);
    let w = walk_caps(b.bytes(), 0x34);
    assert_eq!(
        w.caps,
        vec![
            Capability {
                offset: 0x40,
                id: 1
            },
            Capability {
                offset: 0x50,
                id: 0x10
            }
        ]
    );
    assert_eq!(
        w.issues,
        vec![ConfigError::UnalignedPointer {
            offset: 0x41,
            value: 0x53
        }]
    );
    // ID 0xff stops the walk.
    let mut b = ConfigBuilder::new(256, 1, 2, 0, 0);
    b.cap(0x40, 0x01).cap(0x44, 0xff);
    let w = walk_caps(b.bytes(), 0x34);
    assert_eq!(w.caps.len(), 1);
    assert_eq!(w.issues, vec![ConfigError::CapIdAllOnes { offset: 0x44 }]);
    // Pointer past the end of a short buffer.
    let mut b = ConfigBuilder::new(128, 1, 2, 0, 0);
    b.cap(0x40, 0x01).put8(0x41, 0xfc);
    let w = walk_caps(b.bytes(), 0x34);
    assert_eq!(
        w.issues,
        vec![ConfigError::Truncated {
            needed: 0xfe,
            len: 128
        }]
    );
}

#[test]
fn std_walk_visits_all_48_slots_then_stops_cleanly() {
    let mut b = ConfigBuilder::new(256, 1, 2, 0, 0);
    for slot in 0..48u8 {
        b.cap(0x40 + 4 * slot, slot);
    }
    let w = walk_caps(b.bytes(), 0x34);
    assert_eq!(w.caps.len(), 48);
    assert_eq!(w.caps[47].offset, 0xfc);
    assert!(w.issues.is_empty());
    // Close the chain back on itself: a loop, caught before the bound.
    b.put8(0xfd, 0x40);
    let w = walk_caps(b.bytes(), 0x34);
    assert_eq!(w.caps.len(), 48);
    assert_eq!(w.issues, vec![ConfigError::CapLoop { offset: 0x40 }]);
}

#[test]
fn ext_walk_errors() {
    // Loop 0x100 -> 0x200 -> 0x100.
    let mut b = ConfigBuilder::new(4096, 1, 2, 0, 0);
    b.ext_cap(0x100, 1)
        .ext_cap(0x200, 2)
        .put32(0x200, 0x1001_0002);
    let w = walk_ext_caps(b.bytes());
    assert_eq!(w.caps.len(), 2);
    assert_eq!(w.issues, vec![ConfigError::CapLoop { offset: 0x100 }]);
    // Next pointer below 0x100.
    let mut b = ConfigBuilder::new(4096, 1, 2, 0, 0);
    b.ext_cap(0x100, 1).put32(0x100, 0x0f01_0001);
    let w = walk_ext_caps(b.bytes());
    assert_eq!(w.caps.len(), 1);
    assert_eq!(
        w.issues,
        vec![ConfigError::BadPointer {
            offset: 0x102,
            value: 0x0f0
        }]
    );
    // Low two bits of the next field are masked (PCI_EXT_CAP_NEXT).
    let mut b = ConfigBuilder::new(4096, 1, 2, 0, 0);
    b.put32(0x100, 0x2033_0001).put32(0x200, 0x0001_000d);
    let w = walk_ext_caps(b.bytes());
    assert_eq!(
        w.caps.iter().map(|c| c.offset).collect::<Vec<_>>(),
        vec![0x100, 0x200]
    );
    assert_eq!(w.caps[0].version, 3);
    // Next pointer past a truncated buffer.
    let mut b = ConfigBuilder::new(4096, 1, 2, 0, 0);
    b.ext_cap(0x100, 1).ext_cap(0x400, 2);
    let w = walk_ext_caps(&b.bytes()[..0x300]);
    assert_eq!(
        w.issues,
        vec![ConfigError::Truncated {
            needed: 0x404,
            len: 0x300
        }]
    );
    // No extended space: header 0 or all ones.
    let b = ConfigBuilder::new(4096, 1, 2, 0, 0);
    assert_eq!(walk_ext_caps(b.bytes()), CapWalk::default());
    let mut b = ConfigBuilder::new(4096, 1, 2, 0, 0);
    b.put32(0x100, 0xffff_ffff);
    assert_eq!(walk_ext_caps(b.bytes()), CapWalk::default());
}

#[test]
fn ext_walk_is_bounded_at_480() {
    let mut b = ConfigBuilder::new(4096, 1, 2, 0, 0);
    for i in 0..500u16 {
        b.ext_cap(0x100 + 4 * i, 0x0b);
    }
    let w = walk_ext_caps(b.bytes());
    assert_eq!(w.caps.len(), 480);
    assert_eq!(w.issues, vec![ConfigError::TooManyCaps { limit: 480 }]);
}

#[test]
fn errors_print_their_values() {
    let s = alloc::format!(
        "{}",
        ConfigError::BadPointer {
            offset: 0x41,
            value: 0x20
        }
    );
    assert_eq!(s, "bad capability pointer 0x20 at 0x41");
}

proptest::proptest! {
    #[test]
    fn any_bytes_decode_without_panic_and_offsets_in_bounds(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4200)
    ) {
        if let Ok(p) = parse_config(&bytes) {
            for c in &p.caps {
                proptest::prop_assert!(usize::from(c.offset) + 2 <= bytes.len());
            }
            for c in &p.ext_caps {
                proptest::prop_assert!(usize::from(c.offset) + 4 <= bytes.len());
            }
            if let Some(a) = p.acs {
                proptest::prop_assert!(usize::from(a.offset) + 8 <= bytes.len());
            }
        }
    }
}
