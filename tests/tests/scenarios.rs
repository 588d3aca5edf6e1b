//! `unidma scenarios`, driven through `unidma::cli::run_args`: every
//! scenario passes on the reference server with the fabric's numbers the
//! routes imply, the JSON has the documented shape, and no example machine
//! fails a scenario (skips allowed).

use serde_json::Value;
use unidma_tests::TempDir;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/machines");

fn run(args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["scenarios"];
    full.extend_from_slice(args);
    unidma_tests::run_cli(&full)
}

fn json(args: &[&str]) -> Vec<Value> {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (code, out, err) = run(&a);
    assert_eq!(code, 0, "{err}\n{out}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn by_name<'a>(v: &'a [Value], name: &str) -> &'a Value {
    v.iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

fn num(s: &Value, field: &str) -> u64 {
    s[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} of {s}"))
}

const NAMES: [&str; 16] = [
    "switch-p2p",
    "host-bridge-p2p",
    "refused-read",
    "fallback",
    "stolen-ram",
    "swiotlb-bounce",
    "strict-unmap",
    "lazy-unmap",
    "share-gpu-nic",
    "share-apu",
    "share-revoke",
    "hmm-migrate",
    "hmm-peers",
    "hmm-vma",
    "xdomain-export",
    "nvmet-offload",
];

#[test]
fn reference_text_every_scenario_passes_with_the_p2p_number() {
    let (code, out, err) = run(&[]);
    assert_eq!(code, 0, "{err}\n{out}");
    for name in NAMES {
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name} in\n{out}"));
        assert!(row.contains(" pass "), "{row}");
        assert!(out.contains(&format!("{name} [pass]: ")), "{out}");
    }
    for needle in [
        "scenario         result    bytes root-complex        RAM faults",
        "switch-p2p       pass      12288            0          0      0",
        "=> P2P kept 12288 bytes off the root complex and RAM",
        "deliver to BAR2 of 0000:03:00.0 (phys 0x4000000000)",
        "does not forward peer-to-peer reads",
        "16 passed, 0 failed, 0 skipped",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
}

#[test]
fn reference_json_numbers() {
    let v = json(&[]);
    assert_eq!(
        v.iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        NAMES
    );
    for s in &v {
        let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "bytes",
                "description",
                "details",
                "faults",
                "name",
                "ram_bytes",
                "reason",
                "root_complex_bytes",
                "route",
                "status"
            ]
        );
        assert_eq!(s["status"], "pass", "{s}");
        assert!(!s["description"].as_str().unwrap().is_empty());
    }

    // 1: bus address through the switch: nothing crosses the root complex.
    let s = by_name(&v, "switch-p2p");
    assert_eq!(num(s, "bytes"), 0x3000);
    assert_eq!(num(s, "root_complex_bytes"), 0);
    assert_eq!(num(s, "ram_bytes"), 0);
    assert_eq!(s["faults"].as_array().unwrap().len(), 0);
    assert_eq!(
        s["reason"],
        "P2P kept 12288 bytes off the root complex and RAM"
    );
    let route: Vec<&str> = s["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(
        route,
        [
            "0000:04:00.0 -> 0000:02:01.0",
            "0000:02:01.0 -> 0000:01:00.0",
            "0000:01:00.0 -> 0000:02:00.0",
            "0000:02:00.0 -> 0000:03:00.0",
            "deliver to BAR2 of 0000:03:00.0 (phys 0x4000000000)",
        ]
    );

    // 2: the ACS-redirected gpu0 goes up to the root complex and back down.
    let s = by_name(&v, "host-bridge-p2p");
    assert_eq!(num(s, "bytes"), 0x2000);
    assert_eq!(num(s, "root_complex_bytes"), 2 * 0x2000);
    assert_eq!(num(s, "ram_bytes"), 0);
    let route = s["route"].to_string();
    assert!(route.contains("0000:06:00.0 -> 0000:02:03.0"), "{route}");
    assert!(route.contains("IOMMU at pci0000:00:"), "{route}");

    // 3: refused at map time, and the read anyway faults; nothing moved.
    let s = by_name(&v, "refused-read");
    assert_eq!(num(s, "bytes"), 0);
    let faults = s["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{s}");
    assert!(faults[0]
        .as_str()
        .unwrap()
        .contains("0000:06:00.0 DMA read"));
    let details = s["details"].to_string();
    assert!(
        details.contains("[fallback] P2P from 0000:06:00.0"),
        "{details}"
    );
    assert!(
        details.contains("does not forward peer-to-peer reads"),
        "{details}"
    );

    // 4: the fallback moved the bytes through RAM.
    let s = by_name(&v, "fallback");
    assert_eq!(num(s, "bytes"), 0x2000);
    assert_eq!(num(s, "ram_bytes"), 0x2000);
    assert!(s["reason"].as_str().unwrap().starts_with("fell back"));
    assert!(s["route"].to_string().contains("root-complex -> ram"));

    // 5: stolen RAM is RAM: the peer's write and the owner's read both
    // through the memory controller.
    let s = by_name(&v, "stolen-ram");
    assert_eq!(num(s, "bytes"), 0x2000);
    assert_eq!(num(s, "ram_bytes"), 0x2000);
    assert!(s["route"]
        .to_string()
        .contains("deliver to RAM at 0x80000000"));

    // 6: the bounce: one device write into the swiotlb slot.
    let s = by_name(&v, "swiotlb-bounce");
    assert_eq!(num(s, "bytes"), 0x1f00);
    assert_eq!(num(s, "ram_bytes"), 0x1f00);
    assert!(s["details"]
        .to_string()
        .contains("re-plugged with a 32-bit DMA mask"));

    // 7: one write before unmap, the next one faults.
    let s = by_name(&v, "strict-unmap");
    assert_eq!(num(s, "bytes"), 0x2000);
    let faults = s["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1);
    assert!(faults[0].as_str().unwrap().contains("NotPresent"), "{s}");

    // Lazy: the window closes at the 10 ms flush-queue timeout, probed in
    // 1 ms steps: 1 write before unmap, 1 right after, 9 stale probes.
    let s = by_name(&v, "lazy-unmap");
    assert_eq!(
        s["reason"],
        "stale window measured open through +9ms, closed by +10ms (bound 10ms)"
    );
    assert_eq!(num(s, "bytes"), 11 * 0x1000);
    assert_eq!(s["faults"].as_array().unwrap().len(), 1);
}

#[test]
fn reference_passes_in_every_iommu_mode() {
    for mode in ["off", "strict", "lazy"] {
        let v = json(&["--iommu", mode]);
        for s in &v {
            assert_eq!(s["status"], "pass", "--iommu {mode}: {s}");
        }
        let s = by_name(&v, "switch-p2p");
        assert_eq!(num(s, "root_complex_bytes"), 0, "{mode}");
        assert_eq!(num(s, "bytes"), 0x3000, "{mode}");
    }
    // Without the IOMMU the host-bridge route is decoded by the MMIO window.
    let v = json(&["--iommu", "off"]);
    let route = by_name(&v, "host-bridge-p2p")["route"].to_string();
    assert!(route.contains("MMIO window at pci0000:00:"), "{route}");
}

#[test]
fn devices_are_picked_by_role_after_an_acs_change() {
    // Without the redirect on gpu0's port, gpu0 reaches nvme0 through the
    // switch; the host-bridge pair becomes nvme2 on the other root port.
    let v = json(&["--disable-acs-redir", "0000:02:03.0"]);
    for s in &v {
        assert_eq!(s["status"], "pass", "{s}");
    }
    let s = by_name(&v, "host-bridge-p2p");
    assert_eq!(s["route"][0], "0000:07:00.0 -> 0000:00:02.0", "{s}");
    assert_eq!(num(s, "root_complex_bytes"), 2 * 0x2000);
    // Buffer sharing: with gpu0's port not redirecting, the NIC reads VRAM
    // by bus address (as shipped it detours through RAM: the golden
    // outputs); the APU importer's bytes all go to RAM; the revoked
    // importer's late write is the one fault.
    let s = by_name(&v, "share-gpu-nic");
    assert_eq!(
        (num(s, "ram_bytes"), num(s, "root_complex_bytes")),
        (0, 0),
        "{s}"
    );
    assert!(s["reason"].as_str().unwrap().contains("as peer-bus"), "{s}");
    let s = by_name(&v, "share-apu");
    assert_eq!(num(s, "ram_bytes"), 0x4000, "{s}");
    let s = by_name(&v, "share-revoke");
    assert_eq!(s["faults"].as_array().unwrap().len(), 1, "{s}");
    // Exactly two device-private pages migrate, by the GPU's writes to RAM.
    let s = by_name(&v, "hmm-migrate");
    assert_eq!(num(s, "ram_bytes"), 0x2000, "{s}");
    // The stale peer address faults once; the re-mapped write reaches RAM.
    let s = by_name(&v, "hmm-vma");
    assert_eq!(s["faults"].as_array().unwrap().len(), 1, "{s}");
    // 1000 granted pages read once by the device of domain 2.
    let s = by_name(&v, "xdomain-export");
    assert_eq!(num(s, "bytes"), 1000 * 4096, "{s}");
    assert!(
        s["reason"].as_str().unwrap().contains("1 directory page"),
        "{s}"
    );
    // nvmet offload: no data byte through RAM with p2pmem, four times the
    // I/O size (twice per direction) with system memory.
    let s = by_name(&v, "nvmet-offload");
    assert!(
        s["reason"].as_str().unwrap().contains(
            "0 data bytes through RAM with p2pmem of 0000:03:00.0, 262144 with system memory"
        ),
        "{s}"
    );
}

#[test]
fn no_example_machine_fails_a_scenario() {
    let mut seen = 0;
    for entry in std::fs::read_dir(EXAMPLES).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let p = path.to_str().unwrap();
        let v = json(&["--machine", p]);
        assert_eq!(v.len(), NAMES.len(), "{p}");
        for s in &v {
            let status = s["status"].as_str().unwrap();
            assert!(status == "pass" || status == "skip", "{p}: {s}");
            if status == "skip" {
                assert!(
                    s["reason"]
                        .as_str()
                        .unwrap()
                        .starts_with("not applicable: "),
                    "{p}: {s}"
                );
                assert_eq!(num(s, "bytes"), 0, "{p}: {s}");
            }
        }
        // Every machine with an IOMMU shows both unmap behaviours.
        assert_eq!(by_name(&v, "strict-unmap")["status"], "pass", "{p}");
        assert_eq!(by_name(&v, "lazy-unmap")["status"], "pass", "{p}");
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} example machines");
}

#[test]
fn s390x_skips_p2p_and_still_falls_back() {
    let p = format!("{EXAMPLES}/s390x-zpci.toml");
    let v = json(&["--machine", &p]);
    let s = by_name(&v, "switch-p2p");
    assert_eq!(s["status"], "skip");
    // The arch refuses peer mappings: the fallback moves the bytes via RAM.
    let s = by_name(&v, "fallback");
    assert_eq!(s["status"], "pass", "{s}");
    assert_eq!(num(s, "ram_bytes"), 0x2000);
}

#[test]
fn bad_input_exits_2() {
    let (code, _, err) = run(&["--machine", "/nonexistent/machine.toml"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["--iommu", "sometimes"]);
    assert_eq!(code, 2, "{err}");
    // s390x's bus addresses overlap RAM without the IOMMU: cannot assemble.
    let p = format!("{EXAMPLES}/s390x-zpci.toml");
    let (code, _, err) = run(&["--machine", &p, "--iommu", "off"]);
    assert_eq!(code, 2);
    assert!(err.contains("does not assemble"), "{err}");
}

/// The reference server's TOML edited by `edit`, written to `TAG.toml` in
/// `tmp`.
fn variant_file(tmp: &TempDir, tag: &str, edit: impl FnOnce(&str) -> String) -> std::path::PathBuf {
    tmp.write(
        &format!("{tag}.toml"),
        edit(dma_sim::machine::REFERENCE_TOML),
    )
}

const P2P_SCENARIOS: [&str; 4] = ["switch-p2p", "host-bridge-p2p", "refused-read", "fallback"];

#[test]
fn no_registered_provider_skips_the_p2p_scenarios() {
    let tmp = TempDir::new("scenarios");
    // Same machine, same prefetchable BARs, no registration: no peer
    // memory, so every P2P scenario is skipped (not a BAR picked anyway).
    let f = variant_file(&tmp, "no-p2pmem", |t| {
        t.lines()
            .filter(|l| !l.starts_with("p2pmem"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let v = json(&["--machine", f.to_str().unwrap()]);
    for name in P2P_SCENARIOS {
        let s = by_name(&v, name);
        assert_eq!(s["status"], "skip", "{s}");
        assert_eq!(
            s["reason"],
            "not applicable: no registered p2pmem provider fits (the machine registers none)",
            "{s}"
        );
        assert_eq!(num(s, "bytes"), 0, "{s}");
    }
    // The rest still runs.
    for name in ["stolen-ram", "swiotlb-bounce", "strict-unmap", "lazy-unmap"] {
        assert_eq!(by_name(&v, name)["status"], "pass", "{name}");
    }
    // Text: the skip says why.
    let (code, out, _) = run(&["--machine", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("switch-p2p [skip]: ")
            && out.contains("=> not applicable: no registered p2pmem provider fits"),
        "{out}"
    );
}

#[test]
fn published_providers_are_picked_first() {
    let tmp = TempDir::new("scenarios");
    // nvme0's CMB registered but unpublished; rdma0's BAR0 registered and
    // published: the switch scenario writes rdma0's BAR (as
    // pci_p2pmem_find would hand it out), not nvme0's. gpu0 registers
    // nothing in this variant.
    let f = variant_file(&tmp, "published-first", |t| {
        let t = unidma_tests::edit_once(
            t,
            "p2pmem = [{ bar = 2, publish = true }]",
            "p2pmem = [{ bar = 2, publish = false }]",
        );
        let t = unidma_tests::edit_once(
            &t,
            "p2pmem = [{ bar = 0 }]",
            "p2pmem = [{ bar = 0, publish = true }]",
        );
        unidma_tests::edit_once(&t, "p2pmem = [{ bar = 1, size = \"256M\" }]\n", "")
    });
    let v = json(&["--machine", f.to_str().unwrap()]);
    let s = by_name(&v, "switch-p2p");
    assert_eq!(s["status"], "pass", "{s}");
    let route = s["route"].to_string();
    assert!(route.contains("deliver to BAR0 of 0000:05:00.0"), "{route}");
    // Only registered memory: rdma0 is the published provider, nvme0 the
    // unpublished one; no other BAR (gpu0's) is ever a peer.
    for name in P2P_SCENARIOS {
        let s = by_name(&v, name);
        let text = s.to_string();
        assert!(!text.contains("BAR of 0000:06:00.0"), "{text}");
        assert!(!text.contains("of 0000:06:00.0 (phys"), "{text}");
    }
}
