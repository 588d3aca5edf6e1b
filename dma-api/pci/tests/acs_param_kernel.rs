//! `pci=config_acs=` / `pci=disable_acs_redir=` against drivers/pci/pci.c
//! (`__pci_config_acs`, `pci_dev_str_match`, `pci_dev_str_match_path`,
//! `pci_std_enable_acs`, `pci_enable_acs`). Each test is named after the
//! kernel behaviour it pins.

use dma_pci::topology::acs_param::{
    apply_at_enumeration, apply_config_acs, parse_config_acs, parse_disable_acs_redir,
    AcsEnumeration, DevSpec,
};
use dma_pci::topology::{Acs, AcsCap, CpuInfo, DeviceRecord, HostBridgeRecord, PortType, Topology};
use dma_pci::Bdf;

fn b(s: &str) -> Bdf {
    s.parse().unwrap()
}

const ALL7: Acs = Acs::all();

/// RP 00:01.0 -> DSP-like root port children: 01:00.0 (endpoint).
/// RP 00:02.0 -> 02:00.0 (endpoint, untrusted). Both root ports implement
/// every ACS bit; their control (the "firmware" value) is `fw`.
fn topo(fw: Acs) -> Topology {
    let mut recs = Vec::new();
    for (rp, ep, untrusted) in [("00:01.0", "01:00.0", false), ("00:02.0", "02:00.0", true)] {
        let mut r = DeviceRecord::new(b(rp), PortType::RootPort, None);
        r.vendor = 0x8086;
        r.device = 0x2030;
        r.untrusted = untrusted;
        r.acs = Some(AcsCap {
            cap: ALL7,
            ctrl: fw,
        });
        recs.push(r);
        let mut e = DeviceRecord::new(b(ep), PortType::Endpoint, Some(b(rp)));
        e.vendor = 0x144d;
        e.device = 0xa808;
        recs.push(e);
    }
    Topology::build(
        CpuInfo::default(),
        [HostBridgeRecord::new("hb0", 0, 0)],
        recs,
    )
    .unwrap()
}

fn ctrl(t: &Topology, s: &str) -> Acs {
    t.device(t.lookup(b(s)).unwrap()).unwrap().acs.unwrap().ctrl
}

#[test]
fn config_acs_flags_rightmost_char_is_bit0_sv_then_tb_rr_cr_uf_ec_dt() {
    for (i, bit) in [
        Acs::SV,
        Acs::TB,
        Acs::RR,
        Acs::CR,
        Acs::UF,
        Acs::EC,
        Acs::DT,
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = String::from("xxxxxxx");
        s.replace_range(6 - i..7 - i, "1");
        let v = parse_config_acs(&format!("{s}@00:01.0")).unwrap();
        assert_eq!((v[0].mask, v[0].flags), (bit, bit), "{s}");
    }
}

#[test]
fn config_acs_empty_flags_is_a_zero_mask() {
    // `end = delimit - p - 1 = -1`: the loop does not run, mask = flags = 0.
    let v = parse_config_acs("@00:01.0").unwrap();
    assert_eq!((v[0].mask, v[0].flags), (Acs::empty(), Acs::empty()));
}

#[test]
fn config_acs_accepts_x_beyond_bit6_but_rejects_0_or_1_there() {
    // Extra 'x' only shift; a '0'/'1' at bit 7 sets a mask bit outside
    // SV..DT: "Invalid ACS flags specified".
    let v = parse_config_acs("xx1111011@00:01.0").unwrap();
    assert_eq!(v[0].mask.bits(), 0x7f);
    assert_eq!(v[0].flags.bits(), 0x7b);
    for bad in ["01111011@00:01.0", "11111011@00:01.0", "1x1111011@00:01.0"] {
        let e = parse_config_acs(bad).unwrap_err();
        assert!(e.entry.contains(bad.split('@').next().unwrap()), "{e}");
    }
    // Any other character: "Invalid ACS flags... Ignoring".
    assert!(parse_config_acs("1121@00:01.0").is_err());
    // No '@': "ACS Flags missing".
    assert!(parse_config_acs("00:01.0").is_err());
}

#[test]
fn comma_ends_the_pci_option_so_entries_separate_only_at_semicolon() {
    // pci_setup cuts `pci=` at every ',' (the rest is an "Unknown option"),
    // and pci_dev_str_match_path reads a BDF path up to ';' only.
    assert!(parse_config_acs("xxxx1xx@02:01.0,xxxx0xx@pci:0:0").is_err());
    assert!(parse_config_acs("xxxx1xx@pci:8086:2030,xxxx0xx@00:02.0").is_err());
    assert!(parse_disable_acs_redir("0000:01:00.0,0000:02:00.0").is_err());
    assert!(parse_disable_acs_redir("pci:8086:2030,00:02.0").is_err());
    // ';' separates entries of either form.
    assert_eq!(
        parse_disable_acs_redir("0000:01:00.0;0000:02:00.0")
            .unwrap()
            .len(),
        2
    );
    let v = parse_config_acs("xxxx1xx@pci:8086:2030;xxxx0xx@00:02.0").unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0].spec,
        DevSpec::Id {
            vendor: 0x8086,
            device: 0x2030
        }
    );
    // A trailing ';' ends the loop (`while (*p)`); an empty entry does not
    // parse.
    assert_eq!(parse_disable_acs_redir("00:01.0;").unwrap().len(), 1);
    assert!(parse_disable_acs_redir("00:01.0;;00:02.0").is_err());
}

#[test]
fn config_acs_first_matching_entry_wins_per_device() {
    let mut t = topo(Acs::empty());
    apply_config_acs(&mut t, "xxxxxx1@pci:8086:2030;xxxx1xx@00:01.0").unwrap();
    // Both root ports match the first entry; the second is never reached.
    assert_eq!(ctrl(&t, "00:01.0"), Acs::SV);
    assert_eq!(ctrl(&t, "00:02.0"), Acs::SV);
}

fn enumerate(fw: Acs, e: AcsEnumeration<'_>) -> Topology {
    let mut t = topo(fw);
    apply_at_enumeration(&mut t, &e).unwrap();
    t
}

#[test]
fn pci_std_enable_acs_sets_sv_rr_cr_uf_and_tb_only_for_untrusted() {
    let t = enumerate(
        Acs::empty(),
        AcsEnumeration {
            acs_enable: true,
            ..Default::default()
        },
    );
    let std = Acs::SV | Acs::RR | Acs::CR | Acs::UF;
    assert_eq!(ctrl(&t, "00:01.0"), std);
    // 00:02.0 is marked untrusted in the record: TB too.
    assert_eq!(ctrl(&t, "00:02.0"), std | Acs::TB);
    // pci=noats: TB everywhere.
    let t = enumerate(
        Acs::empty(),
        AcsEnumeration {
            acs_enable: true,
            ats_disabled: true,
            ..Default::default()
        },
    );
    assert_eq!(ctrl(&t, "00:01.0"), std | Acs::TB);
    // No IOMMU (pci_acs_enable == 0): the firmware value stays.
    let t = enumerate(Acs::EC, AcsEnumeration::default());
    assert_eq!(ctrl(&t, "00:01.0"), Acs::EC);
}

#[test]
fn config_acs_x_bits_come_from_firmware_not_from_kernel_defaults() {
    // caps->ctrl = (caps->fw_ctrl & ~mask) | (flags & mask): the SV/CR/UF
    // the kernel enabled are lost where the string says 'x'.
    let t = enumerate(
        Acs::empty(),
        AcsEnumeration {
            acs_enable: true,
            config_acs: Some("xxxx0xx@00:01.0"),
            ..Default::default()
        },
    );
    assert_eq!(ctrl(&t, "00:01.0"), Acs::empty());
    // The other port keeps the kernel defaults.
    assert_eq!(
        ctrl(&t, "00:02.0"),
        Acs::SV | Acs::RR | Acs::CR | Acs::UF | Acs::TB
    );
}

#[test]
fn disable_acs_redir_yields_firmware_value_minus_rr_cr_ec() {
    // mask = RR|CR|EC, flags = ~mask: ctrl = fw_ctrl & ~(RR|CR|EC), so the
    // kernel's SV/UF defaults are dropped too when firmware had them off.
    let t = enumerate(
        Acs::SV | Acs::EC,
        AcsEnumeration {
            acs_enable: true,
            disable_acs_redir: Some("00:01.0"),
            ..Default::default()
        },
    );
    assert_eq!(ctrl(&t, "00:01.0"), Acs::SV);
}

#[test]
fn config_acs_after_disable_acs_redir_recomputes_from_firmware() {
    // Both name 00:01.0: config_acs runs second and starts from fw_ctrl, so
    // the redirect bits the firmware set come back.
    let fw = Acs::RR | Acs::CR;
    let t = enumerate(
        fw,
        AcsEnumeration {
            acs_enable: false,
            disable_acs_redir: Some("00:01.0"),
            config_acs: Some("xxxxxx1@00:01.0"),
            ..Default::default()
        },
    );
    assert_eq!(ctrl(&t, "00:01.0"), fw | Acs::SV);
    // disable_acs_redir alone clears them.
    let t = enumerate(
        fw,
        AcsEnumeration {
            disable_acs_redir: Some("00:01.0"),
            ..Default::default()
        },
    );
    assert_eq!(ctrl(&t, "00:01.0"), Acs::empty());
}

#[test]
fn config_acs_empty_flags_restores_the_firmware_value() {
    let t = enumerate(
        Acs::UF,
        AcsEnumeration {
            acs_enable: true,
            config_acs: Some("@00:01.0"),
            ..Default::default()
        },
    );
    assert_eq!(ctrl(&t, "00:01.0"), Acs::UF);
}
