//! Honest output of the `unidma` CLI: the report's matrix shows the reason
//! that decided each verdict, refusals name what is wrong, overrides and
//! bounces are said, names cannot forge lines, no internal ids leak.
//! Every test asserts the exact message and exit code.

use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    unidma_tests::run_cli(args)
}

/// An example machine file's path.
fn example(name: &str) -> String {
    format!(
        "{}/../examples/machines/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The matrix row of `provider -> client` in a text report.
fn row<'a>(out: &'a str, provider: &str, client: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("  {provider:<14} {client:<14} ")))
        .unwrap_or_else(|| panic!("no row {provider} -> {client}:\n{out}"))
}

/// Bug: the matrix showed the last link of the chain ("host bridge does not
/// forward reads") for a route that an ACS redirect at a switch port sent
/// through the root complex. The decisive reason comes first; the access
/// the host bridge refuses follows; the whole chain stays in `p2p` and JSON.
#[test]
fn matrix_shows_the_decisive_reason_first() {
    let (code, out, err) = run(&["report"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        row(&out, "0000:03:00.0", "0000:06:00.0"),
        "  0000:03:00.0   0000:06:00.0   thru_host_bridge     4 no    yes   yes  \
         ACS redirect (RR|CR) set on 0000:02:03.0: traffic goes through the root complex \
         (pci=disable_acs_redir=0000:02:03.0); host bridge pci0000:00 does not forward peer-to-peer reads"
    );
    assert_eq!(
        row(&out, "0000:00:08.0", "0000:07:00.0"),
        "  0000:00:08.0   0000:07:00.0   thru_host_bridge     3 no    yes   yes  \
         no common upstream bridge: path crosses the host bridge; \
         host bridge pci0000:00 does not forward peer-to-peer reads"
    );
    assert_eq!(
        row(&out, "0000:03:00.0", "0000:04:00.0"),
        "  0000:03:00.0   0000:04:00.0   bus_addr             4 yes   yes   yes  \
         common upstream device 0000:01:00.0"
    );
    // The full chain, outermost first, in `p2p` and in JSON.
    let (code, out, _) = run(&["p2p", "nvme0", "gpu0"]);
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "\n0000:03:00.0 -> 0000:06:00.0: thru_host_bridge distance 4 read no write yes\n  \
         - common upstream device 0000:01:00.0\n  \
         - ACS redirect (RR|CR) set on 0000:02:03.0"
        ),
        "{out}"
    );
    let (code, out, _) = run(&["report", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let r = v["p2p"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider"] == "0000:03:00.0" && r["client"] == "0000:06:00.0")
        .unwrap();
    assert_eq!(r["reasons"].as_array().unwrap().len(), 4, "{r}");
}

/// An unsupported route names the host bridge that is not allowed, after
/// the arch's veto when there is one.
#[test]
fn matrix_names_the_refusing_host_bridge_after_the_arch_veto() {
    let (code, out, err) = run(&["report", "--machine", &example("s390x-zpci")]);
    assert_eq!(code, 0, "{err}");
    let r = row(&out, "0000:00:00.0", "0001:00:00.0");
    assert!(
        r.ends_with(
            "not_supported        2 no    no    no   arch: none (zPCI functions are isolated by \
             firmware and each reaches memory only through its own IOMMU translation; there is \
             no peer-to-peer routing between functions); host bridge pci0000:00 (144d:a824) is \
             not in the P2PDMA allow-list"
        ),
        "{r}"
    );
}

/// A temporary file under a per-process directory.
fn temp_file(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("unidma-honest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

const REGISTERED: &str = "registered providers: 0000:00:08.0 (apu-gfx), 0000:03:00.0 (nvme0), \
                          0000:05:00.0 (rdma0), 0000:06:00.0 (gpu0)";

/// Bug: `p2p` with a port or a BAR-less function as PROVIDER said it
/// "registers no p2pmem" as if a registration could fix it. A function
/// without memory BARs, or a bridge, cannot be a provider: a typed refusal,
/// exit 2 (bad input), nothing on stdout.
#[test]
fn p2p_says_a_function_without_memory_bars_cannot_be_a_provider() {
    for (spec, why) in [
        (
            "switch-dp0",
            "provider 0000:02:00.0 (switch-dp0) cannot be a P2P provider: it is a bridge \
             (switch_downstream), not an endpoint",
        ),
        (
            "0000:00:01.0",
            "provider 0000:00:01.0 (rp0) cannot be a P2P provider: it is a bridge (root_port), \
             not an endpoint",
        ),
        (
            "host-bridge",
            "provider 0000:00:00.0 (host-bridge) cannot be a P2P provider: it is a bridge-class \
             function (class 060000), not an endpoint",
        ),
        (
            "nvme1",
            "provider 0000:04:00.0 (nvme1) registers no p2pmem, so it is not a P2P provider: \
             its memory BAR0 (16K) is not registered",
        ),
    ] {
        let (code, out, err) = run(&["p2p", spec, "nvme0"]);
        assert_eq!(code, 2, "{spec}");
        assert_eq!(out, "", "{spec}");
        assert_eq!(err, format!("unidma: {why}; {REGISTERED}\n"), "{spec}");
    }
    // A BAR-less endpoint.
    let toml = dma_sim::machine::REFERENCE_TOML.replace(
        "multifunction = true\nbars = [{ index = 0, addr = 0xc000_c000, size = \"16K\" }]\n",
        "multifunction = true\n",
    );
    assert_ne!(toml, dma_sim::machine::REFERENCE_TOML, "edit missed");
    let f = temp_file("barless.toml", &toml);
    let (code, out, err) = run(&["p2p", "gpu0-audio", "nvme0", "--machine", &f, "--json"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        format!(
            "unidma: provider 0000:06:00.1 (gpu0-audio) cannot be a P2P provider: it has no \
             memory BAR to register; {REGISTERED}\n"
        )
    );
}

/// Bug: ACS override entries that matched no device, devices without an
/// ACS capability and bits a port does not implement were dropped silently
/// although RFC §5.2 promises a warning. Each is a warning on stderr (every
/// command), the text report heads with the overrides in effect, the JSON
/// report lists them; the verdicts still follow the entries that matched.
#[test]
fn acs_overrides_warn_and_are_listed() {
    let redir = "0000:02:03.0;0000:09:00.0;pci:abcd:1234";
    let cfg = "1000001@0000:02:00.0;101xxxx@0000:03:00.0";
    let warnings = "unidma: warning: --disable-acs-redir: 0000:09:00.0 matches no device\n\
                    unidma: warning: --disable-acs-redir: pci:abcd:1234 matches no device\n\
                    unidma: warning: --config-acs: 0000:02:00.0: ACS DT not implemented by the port, left off\n\
                    unidma: warning: --config-acs: 0000:03:00.0: no ACS capability, parameter ignored\n";
    let args = ["--disable-acs-redir", redir, "--config-acs", cfg];
    let (code, out, err) = run(&[&["report"][..], &args].concat());
    assert_eq!((code, err.as_str()), (0, warnings));
    assert_eq!(
        out.lines().nth(1),
        Some(
            "ACS overrides: pci=disable_acs_redir=0000:02:03.0;0000:09:00.0;pci:abcd:1234,\
             config_acs=1000001@0000:02:00.0;101xxxx@0000:03:00.0"
        )
    );
    // The redirect at 02:03.0 is off: gpu0 reaches nvme0 through the switch.
    let (code, out, err) = run(&[&["p2p", "nvme0", "gpu0"][..], &args].concat());
    assert_eq!((code, err.as_str()), (0, warnings), "{out}");
    let (code, out, err) = run(&[&["report", "--json"][..], &args].concat());
    assert_eq!((code, err.as_str()), (0, warnings));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["acs_overrides"],
        serde_json::json!([
            format!("disable_acs_redir={redir}"),
            format!("config_acs={cfg}")
        ])
    );
    // Without overrides: no header line, no warning, an empty list.
    let (code, out, err) = run(&["report"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(!out.contains("ACS overrides"), "{out}");
    let (_, out, _) = run(&["report", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["acs_overrides"], serde_json::json!([]));
}

/// Bug: `--sysfs` on an empty directory (or one without PCI devices)
/// printed the report of an empty machine, as if this computer had no PCI.
/// It is bad input naming the directory, for every command.
#[test]
fn sysfs_without_pci_devices_is_an_error_naming_the_directory() {
    let root = std::env::temp_dir().join(format!("unidma-honest-sysfs-{}", std::process::id()));
    let empty = root.join("empty");
    let nopci = root.join("nopci");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::create_dir_all(nopci.join("bus/pci/devices")).unwrap();
    for dir in [&empty, &nopci] {
        let d = dir.to_str().unwrap();
        let msg = format!("unidma: --sysfs {d}: no PCI devices under {d}/bus/pci/devices\n");
        for cmd in [
            &["report"][..],
            &["topo"],
            &["p2p", "a", "b"],
            &["report", "--json"],
        ] {
            let (code, out, err) = run(&[cmd, &["--sysfs", d]].concat());
            assert_eq!(
                (code, out.as_str(), err.as_str()),
                (2, "", msg.as_str()),
                "{cmd:?}"
            );
        }
    }
}

/// True if `text` holds an internal id: `hb#0`, `provider#4`, `dev#7`.
fn internal_id(text: &str) -> Option<&str> {
    ["hb#", "provider#", "dev#", "\"hb"]
        .into_iter()
        .find(|tag| {
            text.match_indices(tag).any(|(i, _)| {
                text[i + tag.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            })
        })
}

/// Bug: routes said `hb#0`, mapping chains `peer-bar(provider#4)`, the DOT
/// graph had `"hb0"` nodes: ids no user can look up. Every command's
/// output on every example machine is free of them.
#[test]
fn no_internal_ids_in_any_output() {
    for name in [
        "reference-server",
        "amd-zen-two-gpus",
        "arm64-soc",
        "s390x-zpci",
    ] {
        let file = example(name);
        let (_, report, _) = run(&["report", "--machine", &file, "--json"]);
        let v: Value = serde_json::from_str(&report).unwrap();
        let p2pmem = v["p2pmem"].as_array().unwrap();
        let provider = p2pmem[0]["bdf"].as_str().unwrap().to_string();
        let range = p2pmem[0]["ranges"][0]["start"]
            .as_str()
            .unwrap()
            .to_string();
        let clients: Vec<String> = v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == "endpoint" || d["kind"] == "rc_endpoint")
            .map(|d| d["bdf"].as_str().unwrap().to_string())
            .filter(|b| *b != provider)
            .collect();
        let mut cmds: Vec<Vec<String>> = Vec::new();
        for c in [
            "report",
            "topo",
            "topo --dot",
            "scenarios",
            "scenarios --iommu off",
        ] {
            for json in [false, true] {
                let mut a: Vec<String> = c.split(' ').map(str::to_string).collect();
                a.extend(["--machine".to_string(), file.clone()]);
                if json {
                    a.push("--json".into());
                }
                cmds.push(a);
            }
        }
        cmds.push(vec!["check".into(), file.clone()]);
        let mut p2p = vec!["p2p".to_string(), provider.clone()];
        p2p.extend(clients.iter().cloned());
        p2p.extend(["--machine".to_string(), file.clone()]);
        cmds.push(p2p);
        for dir in ["to-device", "from-device"] {
            cmds.push(
                format!(
                    "map {} --phys {range} --len 4K --dir {dir} --machine {file}",
                    clients[0]
                )
                .split(' ')
                .map(str::to_string)
                .collect(),
            );
        }
        for args in cmds {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let (_, out, err) = run(&a);
            for text in [&out, &err] {
                assert_eq!(internal_id(text), None, "{name}: {a:?}:\n{text}");
            }
        }
    }
}

/// A reader that went away after `limit` bytes (`unidma report | head`).
struct ClosedPipe {
    limit: usize,
}

impl std::io::Write for ClosedPipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.limit == 0 {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(self.limit);
        self.limit -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A reader that stops early ends every command quietly: nothing on
/// stderr, text and JSON, wherever the pipe closes; exit 0, except that a
/// verdict decided before any output (`p2p`, `map`, `attach`) keeps its
/// exit code, as the binary's buffered stdout already did for short output.
#[test]
fn a_broken_pipe_ends_every_command_quietly_keeping_verdicts() {
    let cmds: [&[&str]; 9] = [
        &["report"],
        &["p2p", "nvme0", "nvme1", "gpu0"],
        // Refused (exit 1): the verdict must survive the closed pipe.
        &["p2p", "nvme0", "gpu0", "--access", "read"],
        &["topo"],
        &["topo", "--dot"],
        &["scenarios"],
        &[
            "map",
            "nvme0",
            "--phys",
            "0x1000_0000",
            "--len",
            "4K",
            "--dir",
            "to-device",
        ],
        &["attach", "gpu0", "rdma0", "--access", "read"],
        &[
            "check",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../examples/machines/arm64-soc.toml"
            ),
        ],
    ];
    let mut refusals = 0;
    for cmd in cmds {
        for json in [false, true] {
            // 0: gone before the first byte; 10 and 100: mid-output (the
            // report's first regression, `unidma report | head`).
            for limit in [0, 10, 100] {
                let mut args = vec!["unidma"];
                args.extend_from_slice(cmd);
                if json {
                    args.push("--json");
                }
                let verdict = unidma::cli::run_args(args.clone(), &mut Vec::new(), &mut Vec::new());
                let want = match cmd[0] {
                    "p2p" | "map" | "attach" => verdict,
                    _ => 0,
                };
                refusals += usize::from(want == 1);
                let mut out = ClosedPipe { limit };
                let mut err = Vec::new();
                let code = unidma::cli::run_args(args.clone(), &mut out, &mut err);
                let err = String::from_utf8(err).unwrap();
                assert!(
                    code == want,
                    "{args:?} (limit {limit}): exit {code}, want {want}: {err}"
                );
                assert_eq!(err, "", "{args:?} (limit {limit})");
            }
        }
    }
    assert!(refusals > 0, "no refused verdict was tested");
}

/// Bug: a machine without an IOMMU listed "IOMMU groups" that no IOMMU
/// enforces. Groups are IOMMU groups only under a host bridge with an
/// IOMMU; the rest are labelled isolation groups (text, JSON, `check`).
#[test]
fn groups_without_an_iommu_are_isolation_groups() {
    let toml = dma_sim::machine::REFERENCE_TOML.replace("\niommu = true\n", "\niommu = false\n");
    assert_ne!(toml, dma_sim::machine::REFERENCE_TOML, "edit missed");
    let f = temp_file("no-iommu.toml", &toml);
    let (code, out, err) = run(&["report", "--machine", &f]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out.contains(
            "\nIOMMU groups:\n  (none: no host bridge has an IOMMU)\n\n\
             Isolation groups (no IOMMU on their host bridge: ACS isolation only, nothing enforces it):\n  \
             isolation group 0: 0000:00:00.0 (host-bridge)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("\n  isolation group 9: 0000:06:00.0 (gpu0), 0000:06:00.1 (gpu0-audio)\n"),
        "{out}"
    );
    assert!(!out.contains("\n  group "), "{out}");
    let (code, out, _) = run(&["report", "--machine", &f, "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["groups"], serde_json::json!([]));
    assert_eq!(v["isolation_groups"].as_array().unwrap().len(), 11);
    assert_eq!(
        v["isolation_groups"][9],
        serde_json::json!(["0000:06:00.0", "0000:06:00.1"])
    );
    let (code, out, _) = run(&["check", &f]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "{f}: ok: machine reference-server (x86_64), 1 host bridge(s), 15 devices, 0 IOMMU groups, \
             11 isolation groups (no IOMMU), 4 p2pmem provider(s); assembles with --iommu strict, lazy, off\n"
        )
    );
    // With the IOMMU: IOMMU groups, no isolation section.
    let (_, out, _) = run(&["report"]);
    assert!(
        out.contains("\nIOMMU groups:\n  group 0: 0000:00:00.0 (host-bridge)\n"),
        "{out}"
    );
    assert!(!out.contains("Isolation groups"), "{out}");
    let (_, out, _) = run(&["report", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["isolation_groups"], serde_json::json!([]));
    assert_eq!(v["groups"].as_array().unwrap().len(), 11);
}

/// Bug: a device name with a newline forged a line of the report (here a
/// fake matrix row), and control or bidi characters reached the terminal
/// raw. Text and DOT print them escaped by one function
/// (`unidma::escape::display`); JSON keeps the exact name (serde escapes it).
#[test]
fn names_cannot_forge_lines_or_reach_the_terminal_raw() {
    let forged = "  0000:99:00.0   0000:98:00.0   bus_addr 1 yes yes yes forged";
    let toml = dma_sim::machine::REFERENCE_TOML
        .replacen(
            "name = \"gpu0\"",
            &format!("name = \"gpu0\\n{forged}\\u202e\""),
            1,
        )
        .replacen(
            "name = \"pci0000:00\"",
            "name = \"pci0000:00\\u001b[31m\"",
            1,
        );
    let f = temp_file("evil.toml", &toml);
    let gpu0 = format!("gpu0\\n{forged}\\u{{202e}}");
    let hb = "pci0000:00\\u{001b}[31m";
    let raw = |c: char| c.is_control() && c != '\n' || c == '\u{202e}';
    for cmd in [
        &["report"][..],
        &["topo"],
        &["topo", "--dot"],
        &["topo", "--dot", "--json"],
        &["scenarios"],
        &["p2p", "gpu0-audio", "nvme0"],
        &["check"],
    ] {
        let mut args: Vec<&str> = cmd.to_vec();
        if cmd[0] == "check" {
            args.push(&f);
        } else {
            args.extend(["--machine", &f]);
        }
        let (_, out, err) = run(&args);
        for text in [&out, &err] {
            assert!(
                !text.lines().any(|l| l.starts_with(forged)),
                "{cmd:?} forged a line:\n{text}"
            );
            assert!(
                !text.chars().any(raw),
                "{cmd:?} printed a raw control character:\n{text}"
            );
        }
    }
    let (code, out, _) = run(&["report", "--machine", &f]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "\n  group 9: 0000:06:00.0 ({gpu0}), 0000:06:00.1 (gpu0-audio)\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("\n-[0000:00]- {hb} (8086:2020) iommu=on")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "host bridge {hb} does not forward peer-to-peer reads\n"
        )),
        "{out}"
    );
    let (code, out, _) = run(&["topo", "--dot", "--machine", &f]);
    assert_eq!(code, 0);
    assert!(
        out.contains("  \"host bridge pci0000:00\\\\u{001b}[31m\" [label=\"pci0000:00\\\\u{001b}[31m\\nhost bridge\", shape=house];\n"),
        "{out}"
    );
    // `p2p` refuses gpu0-audio as a provider; the message lists gpu0 escaped.
    let (code, _, err) = run(&["p2p", "gpu0-audio", "nvme0", "--machine", &f, "--json"]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("0000:06:00.0 ({gpu0})\n")), "{err}");
    // JSON: the exact name.
    let (code, out, _) = run(&["report", "--machine", &f, "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let d = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["bdf"] == "0000:06:00.0")
        .unwrap();
    assert_eq!(d["name"], format!("gpu0\n{forged}\u{202e}"));
}

/// The lines of a `map` run with `args` (exit code, stdout lines).
fn map_lines(args: &[&str]) -> (i32, Vec<String>) {
    let (code, out, err) = run(&[&["map"][..], args].concat());
    assert_eq!(err, "", "{args:?}");
    (code, out.lines().map(str::to_string).collect())
}

/// Bug: `map --force-bounce` with the IOMMU translating the device was
/// silently ignored, and a bounced mapping (forced, a mask that cannot
/// reach the buffer, an untrusted device) looked like a direct one. Linux
/// `swiotlb=force` acts in dma-direct only (kernel/dma/direct.h
/// `dma_direct_map_phys`); dma-iommu bounces untrusted devices only. The
/// chain says which, with the slot.
#[test]
fn map_says_when_and_why_it_bounces() {
    let base = [
        "nvme0",
        "--phys",
        "0x1000_0000",
        "--len",
        "4K",
        "--dir",
        "to-device",
    ];
    // IOMMU on: --force-bounce has no effect, and the chain says so.
    let (code, lines) = map_lines(&[&base[..], &["--force-bounce"]].concat());
    assert_eq!(code, 0);
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            "  swiotlb: --force-bounce not applicable: the iommu backend translates this device \
             (Linux swiotlb=force acts in dma-direct only, kernel/dma/direct.h)"
        )
    );
    assert!(
        !lines.iter().any(|l| l.contains("bounced through")),
        "{lines:?}"
    );
    // IOMMU off: forced, with the slot.
    let (code, lines) = map_lines(&[&base[..], &["--force-bounce", "--iommu", "off"]].concat());
    assert_eq!(code, 0);
    assert!(
        lines.contains(
            &"  swiotlb: bounced through the slot at 0x74000000: forced (swiotlb=force)"
                .to_string()
        ),
        "{lines:?}"
    );
    let (_, out, _) = run(&[
        &["map"][..],
        &base,
        &["--force-bounce", "--iommu", "off", "--json"],
    ]
    .concat());
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["bounce"],
        serde_json::json!({"slot": "0x74000000", "cause": "forced"})
    );
    assert_eq!(v["force_bounce"], "applied");
    // Without the option: not bounced, nothing said.
    let (_, out, _) = run(&[&["map"][..], &base, &["--json"]].concat());
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["bounce"].clone(), v["force_bounce"].clone()),
        (Value::Null, Value::Null)
    );
    // A 32-bit device and RAM above 4 GiB: bounced because it cannot reach.
    let (code, lines) = map_lines(&[
        "legacy-a",
        "--phys",
        "0x2_0000_0000",
        "--len",
        "4K",
        "--dir",
        "to-device",
        "--machine",
        &example("arm64-soc"),
        "--iommu",
        "off",
    ]);
    assert_eq!(code, 0);
    assert!(
        lines.contains(
            &"  swiotlb: bounced through the slot at 0xf4000000: the device cannot address the buffer \
              (DMA mask or dma-ranges)"
                .to_string()
        ),
        "{lines:?}"
    );
    // An untrusted device's sub-granule range under the IOMMU.
    let toml = dma_sim::machine::REFERENCE_TOML.replacen(
        "name = \"nvme1\"",
        "untrusted = true\nname = \"nvme1\"",
        1,
    );
    let f = temp_file("untrusted.toml", &toml);
    let (code, lines) = map_lines(&[
        "nvme1",
        "--phys",
        "0x1000_0100",
        "--len",
        "0x100",
        "--dir",
        "to-device",
        "--machine",
        &f,
    ]);
    assert_eq!(code, 0);
    assert!(
        lines.contains(
            &"  swiotlb: bounced through the slot at 0x74000000: untrusted device, range not aligned \
              to the IOVA granule"
                .to_string()
        ),
        "{lines:?}"
    );
}
