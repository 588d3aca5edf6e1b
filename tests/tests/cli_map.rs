//! `unidma map`, driven through `unidma::cli::run_args`.

use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["map"];
    full.extend_from_slice(args);
    unidma_tests::run_cli(&full)
}

fn json(args: &[&str]) -> (i32, Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let (code, out, err) = run(&a);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, v)
}

#[test]
fn ram_through_strict_iommu_gets_an_iova() {
    let (code, v) = json(&[
        "nvme0",
        "--phys",
        "0x1000_0000",
        "--len",
        "0x1000",
        "--dir",
        "to-device",
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["kind"]["type"], "ram");
    assert_eq!(v["target"]["type"], "ram");
    assert_eq!(v["backend"], "iommu");
    assert_eq!(v["iommu"], "strict");
    assert_eq!(v["iommu_domain"]["type"], "Dma");
    assert_eq!(v["mapped"], true);
    // 32-bit-first IOVA allocation, top down: the first page below 4 GiB.
    assert_eq!(v["dma"], "0xfffff000");
    assert!(v["route"].is_null() && v["policy"].is_null() && v["error"].is_null());
}

#[test]
fn iommu_off_maps_ram_one_to_one() {
    let (code, v) = json(&[
        "03:00.0",
        "--phys",
        "0x1000_0000",
        "--len",
        "4K",
        "--dir",
        "bidirectional",
        "--iommu",
        "off",
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["dma"], "0x10000000");
    assert_eq!(v["backend"], "direct(x86_64)");
    assert!(v["iommu_domain"].is_null());
}

#[test]
fn force_bounce_goes_through_swiotlb() {
    let (code, v) = json(&[
        "nvme0",
        "--phys",
        "0x1000_0000",
        "--len",
        "4K",
        "--dir",
        "to-device",
        "--iommu",
        "off",
        "--force-bounce",
    ]);
    assert_eq!(code, 0);
    let dma = u64::from_str_radix(v["dma"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_ne!(
        dma, 0x1000_0000,
        "a forced bounce must not map the original"
    );
    assert!(dma < 1 << 31, "swiotlb lives in low RAM: {dma:#x}");
}

#[test]
fn switch_peer_is_a_bus_address_and_skips_the_iommu() {
    let (code, out, _) = run(&[
        "nvme0",
        "--phys",
        "0x40_0400_0000",
        "--len",
        "4K",
        "--dir",
        "from-device",
    ]);
    assert_eq!(code, 0);
    for needle in [
        "kind:    peer-bar(0000:05:00.0)\n",
        "bus_addr distance 4",
        "common upstream device 0000:01:00.0",
        "arch:    x86_64 carries it",
        "BUS_ADDRESS",
        "DMA address 0x4004000000",
        "the IOMMU is not used",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from\n{out}");
    }
    let (_, v) = json(&[
        "nvme0",
        "--phys",
        "0x40_0400_0000",
        "--len",
        "4K",
        "--dir",
        "from-device",
    ]);
    assert_eq!(v["route"]["map_type"], "bus_addr");
    assert_eq!(v["route"]["provider"], "0000:05:00.0");
    assert_eq!(v["target"]["type"], "peer_bus");
    assert_eq!(v["target"]["bus"], "0x4004000000");
    assert_eq!(v["kind"]["owner"], "0000:05:00.0");
}

#[test]
fn fallback_refusal_prints_the_typed_error_and_reasons_and_exits_1() {
    // gpu0 is behind ACS redirect; this root complex does not forward reads.
    let (code, out, _) = run(&[
        "nvme0",
        "--phys",
        "0x50_0000_0000",
        "--len",
        "4K",
        "--dir",
        "to-device",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("[fallback] P2P from 0000:03:00.0 to memory of 0000:06:00.0"),
        "{out}"
    );
    assert!(
        out.contains("ACS redirect (RR|CR) set on 0000:02:03.0"),
        "{out}"
    );
    assert!(out.contains("does not forward peer-to-peer reads"), "{out}");
    assert!(out.contains("error kind: fallback"), "{out}");
    let (code, v) = json(&[
        "nvme0",
        "--phys",
        "0x50_0000_0000",
        "--len",
        "4K",
        "--dir",
        "to-device",
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["error"]["kind"], "fallback");
    assert_eq!(v["mapped"], false);
    assert!(v["dma"].is_null());
    assert_eq!(v["route"]["read"], false);
    assert_eq!(v["route"]["map_type"], "thru_host_bridge");
    // Writes are forwarded: the same range maps through the host bridge.
    let (code, v) = json(&[
        "nvme0",
        "--phys",
        "0x50_0000_0000",
        "--len",
        "4K",
        "--dir",
        "from-device",
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["target"]["type"], "peer_host_bridge");
}

#[test]
fn s390x_arch_veto_is_a_fallback() {
    let (code, v) = json(&[
        "--machine",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/machines/s390x-zpci.toml"
        ),
        "0000:00:00.0",
        "--phys",
        "0x1000",
        "--len",
        "1",
        "--dir",
        "to-device",
    ]);
    // RAM maps on s390x.
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["kind"]["type"], "ram");
    // roce0 -> nvme0's p2pmem BAR: separate PCI domains, refused with the
    // oracle's reasons (the arch would veto it anyway).
    let (code, v) = json(&[
        "--machine",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/machines/s390x-zpci.toml"
        ),
        "roce0",
        "--phys",
        "0x8000_0000_0400_0000",
        "--len",
        "4K",
        "--dir",
        "from-device",
    ]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], "fallback");
    assert_eq!(v["kind"]["type"], "peer_bar");
    assert_eq!(v["route"]["map_type"], "not_supported");
    assert!(
        v["route"]["reasons"][1]
            .as_str()
            .unwrap()
            .contains("different host bridges"),
        "{v}"
    );
}

#[test]
fn numbers_take_every_suffix_of_the_machine_file_grammar() {
    // Bug: `--len` refused `4KiB` and `1T` that machine files accept.
    for len in ["4KiB", "4K", "0x1000", "4_096"] {
        let (code, v) = json(&[
            "nvme0",
            "--phys",
            "0x1000_0000",
            "--len",
            len,
            "--dir",
            "to-device",
        ]);
        assert_eq!(code, 0, "{len}: {v}");
        assert_eq!(v["len"], 4096, "{len}: {v}");
    }
}

#[test]
fn stolen_ram_is_mapped_as_ram() {
    let (code, v) = json(&[
        "apu-gfx",
        "--phys",
        "0x8000_1000",
        "--len",
        "4K",
        "--dir",
        "bidirectional",
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["kind"]["type"], "stolen_ram");
    assert_eq!(v["kind"]["owner"], "0000:00:08.0");
    assert_eq!(v["target"]["type"], "ram");
}

#[test]
fn bad_input_exits_2_with_a_message() {
    for (args, needle) in [
        (
            vec!["09:00.0", "--phys", "0", "--len", "1", "--dir", "to-device"],
            "no device \"09:00.0\"",
        ),
        (
            vec!["02:00.0", "--phys", "0", "--len", "1", "--dir", "to-device"],
            "device 0000:02:00.0 (switch-dp0) is a bridge (switch_downstream), not an endpoint",
        ),
        (
            // The host bridge's own function: the same endpoint check as
            // the clients of `unidma p2p`.
            vec![
                "host-bridge",
                "--phys",
                "0",
                "--len",
                "1",
                "--dir",
                "to-device",
            ],
            "is a bridge-class function (class 060000), not an endpoint",
        ),
        (
            vec![
                "nvme0",
                "--phys",
                "0xzz",
                "--len",
                "1",
                "--dir",
                "to-device",
            ],
            "invalid value '0xzz' for '--phys <PHYS>': \"0xzz\" is not a number: not a digit",
        ),
        (
            // One number grammar with machine files: no sign, no spaces,
            // `_` only between digits.
            vec![
                "nvme0", "--phys", "+0x1000", "--len", "1", "--dir", "to-device",
            ],
            "invalid value '+0x1000' for '--phys <PHYS>': \"+0x1000\" is not a number: no sign is allowed",
        ),
        (
            vec![
                "nvme0", "--phys", "0x1000", "--len", "4K_", "--dir", "to-device",
            ],
            "invalid value '4K_' for '--len <LEN>': \"4K_\" is not a number: `_` must sit between two digits",
        ),
        (
            vec![
                "nvme0",
                "--phys",
                "0x1000",
                "--len",
                "0",
                "--dir",
                "to-device",
            ],
            "--len must be at least 1",
        ),
        (
            vec![
                "nvme0",
                "--phys",
                "0x90000000000",
                "--len",
                "1",
                "--dir",
                "to-device",
            ],
            "not one kind of memory",
        ),
        (
            vec![
                "nvme0",
                "--phys",
                "0xffffffffffffffff",
                "--len",
                "2",
                "--dir",
                "to-device",
            ],
            "wraps",
        ),
        (
            vec![
                "nvme0", "--phys", "0x1000", "--len", "1", "--dir", "sideways",
            ],
            "invalid value 'sideways'",
        ),
        (
            vec![
                "nvme0",
                "--phys",
                "0x1000",
                "--len",
                "1",
                "--dir",
                "to-device",
                "--iommu",
                "maybe",
            ],
            "invalid value 'maybe'",
        ),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {out} {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    }
}
