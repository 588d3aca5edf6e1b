//! The `unidma` CLI, driven through `unidma::cli::run_args`.

use serde_json::Value;
use unidma_tests::TempDir;

fn run(args: &[&str]) -> (i32, String, String) {
    unidma_tests::run_cli(args)
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn report_text_has_every_section() {
    let (code, out, err) = run(&["report"]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "machine reference-server (x86_64",
        "PCI tree:",
        "+-02:00.0 10b5:8747 PLX Technology, Inc. PEX 8747 48-Lane, 5-Port PCI Express Gen 3 (8.0 GT/s) Switch (switch-dp0)",
        "IOMMU groups:",
        "group 9: 0000:06:00.0 (gpu0), 0000:06:00.1 (gpu0-audio)",
        "p2pmem providers:",
        "0000:03:00.0 (nvme0): size 64M available 64M published yes",
        "0000:03:00.0   0000:05:00.0   bus_addr             4 yes   yes",
        "0000:03:00.0   0000:06:00.0   thru_host_bridge     4 no    yes",
        "stolen_ram of 0000:00:08.0",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
}

#[test]
fn report_json_fields() {
    let v = json(&["report", "--json"]);
    assert_eq!(v["machine"]["arch"], "x86_64");
    let devs = v["devices"].as_array().unwrap();
    assert_eq!(devs.len(), 15);
    let nvme0 = devs.iter().find(|d| d["bdf"] == "0000:03:00.0").unwrap();
    assert_eq!(nvme0["vendor"], "144d");
    assert_eq!(nvme0["device"], "a824");
    assert_eq!(nvme0["class"], "010802");
    assert_eq!(nvme0["kind"], "endpoint");
    assert_eq!(nvme0["parent"], "0000:02:00.0");
    assert_eq!(nvme0["bars"][1]["index"], 2);
    assert_eq!(nvme0["bars"][1]["start"], "0x4000000000");
    assert_eq!(nvme0["bars"][1]["size"], 64u64 << 20);
    let p2p = v["p2p"].as_array().unwrap();
    let e = p2p
        .iter()
        .find(|e| e["provider"] == "0000:03:00.0" && e["client"] == "0000:06:00.0")
        .unwrap();
    assert_eq!(e["map_type"], "thru_host_bridge");
    assert_eq!(e["distance"], 4);
    assert_eq!(e["read"], false);
    assert_eq!(e["write"], true);
    assert!(e["reasons"][1].as_str().unwrap().contains("ACS redirect"));
    let groups = v["groups"].as_array().unwrap();
    assert!(groups
        .iter()
        .any(|g| g == &serde_json::json!(["0000:06:00.0", "0000:06:00.1"])));
    let p2pmem = v["p2pmem"].as_array().unwrap();
    let nvme0 = p2pmem.iter().find(|p| p["bdf"] == "0000:03:00.0").unwrap();
    assert_eq!(nvme0["published"], true);
    let rdma0 = p2pmem.iter().find(|p| p["bdf"] == "0000:05:00.0").unwrap();
    assert_eq!(rdma0["published"], false);
    assert_eq!(v["providers"], "registered");
    assert_eq!(v["candidates"], serde_json::json!([]));
    assert_eq!(v["p2p_empty"], Value::Null);
}

/// BDFs of the report's registered p2pmem providers (`p2pmem[]`).
fn registered(v: &Value) -> Vec<String> {
    v["p2pmem"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bdf"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn matrix_providers_are_exactly_the_registered_providers() {
    let v = json(&["report", "--json"]);
    let reg = registered(&v);
    assert!(reg.contains(&"0000:03:00.0".to_string()), "{reg:?}");
    let mut sorted = reg.clone();
    sorted.sort();
    assert_eq!(reg, sorted, "p2pmem[] in BDF order");
    // Every registered provider has rows, and nothing else is a provider:
    // not the endpoints with unregistered (prefetchable) BARs.
    let mut providers: Vec<String> = v["p2p"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["provider"].as_str().unwrap().to_string())
        .collect();
    providers.dedup();
    assert_eq!(providers, reg);
    // Clients: every endpoint but the provider itself, never a bridge.
    let endpoints: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] != "root_port" && !d["kind"].as_str().unwrap().starts_with("switch"))
        .filter(|d| !d["class"].as_str().unwrap().starts_with("06"))
        .map(|d| d["bdf"].as_str().unwrap())
        .collect();
    for p in &reg {
        let clients: Vec<&str> = v["p2p"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["provider"] == p.as_str())
            .map(|e| e["client"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = endpoints.iter().copied().filter(|c| c != p).collect();
        assert_eq!(clients, want, "{p}");
    }
    // The text matrix says what its providers are and has the same rows.
    let (code, out, _) = run(&["report"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("P2P matrix (registered p2pmem provider -> client; oracle linux):"),
        "{out}"
    );
    let rows = out
        .lines()
        .skip_while(|l| !l.starts_with("P2P matrix"))
        .skip(2)
        .take_while(|l| l.starts_with("  0"))
        .count();
    assert_eq!(rows, v["p2p"].as_array().unwrap().len(), "{out}");
    let gpu0_rows = out
        .lines()
        .filter(|l| l.starts_with("  0000:06:00.0 "))
        .count();
    assert!(gpu0_rows > 0, "gpu0 registers part of BAR 1: {out}");
    let nvme1_rows = out
        .lines()
        .filter(|l| l.starts_with("  0000:04:00.0 "))
        .count();
    assert_eq!(nvme1_rows, 0, "nvme1 registers no p2pmem: {out}");
}

#[test]
fn empty_matrix_says_why() {
    let tmp = TempDir::new("cli");
    // The reference server without its registration.
    let src = dma_sim::machine::REFERENCE_TOML
        .lines()
        .filter(|l| !l.starts_with("p2pmem"))
        .collect::<Vec<_>>()
        .join("\n");
    let f = tmp.write("no-p2pmem.toml", &src);
    let path = f.to_str().unwrap();
    let (code, out, err) = run(&["report", "--machine", path]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("p2pmem providers:\n  (none registered)\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "P2P matrix (registered p2pmem provider -> client; oracle linux):\n  (empty: the machine registers no p2pmem provider)\n"
        ),
        "{out}"
    );
    assert!(!out.contains("provider       client"), "bare header: {out}");
    let v = json(&["report", "--machine", path, "--json"]);
    assert_eq!(v["p2p"], serde_json::json!([]));
    assert_eq!(v["p2p_empty"], "the machine registers no p2pmem provider");
    // Every provider is refused by `p2p` now.
    let (code, _, err) = run(&["p2p", "--machine", path, "nvme0", "nvme1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("0000:03:00.0 (nvme0) registers no p2pmem"),
        "{err}"
    );
    assert!(
        err.contains("the machine registers no p2pmem provider"),
        "{err}"
    );
}

#[test]
fn p2p_refuses_an_unregistered_provider() {
    let v = json(&["report", "--json"]);
    let reg = registered(&v);
    // An endpoint with memory BARs, none registered.
    let d = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["kind"] == "endpoint"
                && !reg.contains(&d["bdf"].as_str().unwrap().to_string())
                && d["bars"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|b| b["io"] == false)
        })
        .expect("an endpoint with unregistered memory BARs");
    let bdf = d["bdf"].as_str().unwrap();
    let name = d["name"].as_str().unwrap();
    for spec in [bdf, name] {
        let (code, out, err) = run(&["p2p", spec, "nvme0"]);
        assert_eq!(code, 2, "{spec}: {out}");
        assert!(out.is_empty());
        assert!(
            err.contains(&format!("provider {bdf} ({name}) registers no p2pmem")),
            "{err}"
        );
        assert!(err.contains("not registered"), "{err}");
        assert!(
            err.contains("registered providers: 0000:00:08.0 (apu-gfx), 0000:03:00.0 (nvme0)"),
            "{err}"
        );
    }
    // A port has no BARs at all.
    let (code, _, err) = run(&["p2p", "switch-dp0", "nvme0", "--json"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("provider 0000:02:00.0 (switch-dp0) cannot be a P2P provider: it is a bridge (switch_downstream), not an endpoint"),
        "{err}"
    );
}

#[test]
fn p2p_refuses_a_bridge_client() {
    for (client, needle) in [
        ("switch-dp0", "client 0000:02:00.0 (switch-dp0) is a bridge (switch_downstream), not an endpoint"),
        ("00:01.0", "client 0000:00:01.0 (rp0) is a bridge (root_port), not an endpoint"),
        ("host-bridge", "client 0000:00:00.0 (host-bridge) is a bridge-class function (class 060000), not an endpoint"),
    ] {
        let (code, out, err) = run(&["p2p", "nvme0", "nvme1", client]);
        assert_eq!(code, 2, "{client}: {out}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains(needle), "{err}");
    }
    // Every endpoint is a client, whatever its BARs (clients need none):
    // the APU's integrated GPU and the GPU's audio function too.
    let (code, _, err) = run(&["p2p", "nvme0", "apu-gfx", "gpu0-audio", "--access", "write"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn p2p_verdicts_and_exit_codes() {
    let (code, out, _) = run(&["p2p", "nvme0", "rdma0"]);
    assert_eq!(code, 0);
    assert!(out.contains("0000:03:00.0 -> 0000:05:00.0: bus_addr distance 4 read yes write yes"));
    // Write-only host bridge: writes allowed, reads refused (exit 1).
    let (code, out, _) = run(&["p2p", "0000:03:00.0", "gpu0", "--access", "write"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(&["p2p", "03:00.0", "gpu0", "--access", "read"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not forward peer-to-peer reads"), "{out}");
    assert!(out.contains("pci=disable_acs_redir=0000:02:03.0"), "{out}");
    let v = json(&["p2p", "nvme0", "rdma0", "nvme1", "--json"]);
    assert_eq!(v["distance"], 8);
    assert_eq!(v["allowed"], true);
    assert_eq!(v["routes"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_input_exits_2_with_message() {
    let (code, out, err) = run(&["p2p", "nvme0", "nosuch"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("no device \"nosuch\""), "{err}");
    let (code, _, err) = run(&["report", "--machine", "/nonexistent/m.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/m.toml"), "{err}");
    let (code, _, err) = run(&["p2p", "nvme0", "rdma0", "--access", "sideways"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, _, err) = run(&["report", "--sysfs", "/nonexistent/sys"]);
    assert_eq!(code, 2);
    assert!(err.contains("sysfs"), "{err}");
}

/// `check` of several files and of standard input (`-`): each file is
/// reported under its name, a failing file does not stop the next, and the
/// exit code is the worst of them.
#[test]
fn check_several_files_and_stdin() {
    let tmp = TempDir::new("cli");
    let good = tmp.write("several-good.toml", dma_sim::machine::REFERENCE_TOML);
    let good = good.to_str().unwrap();
    let bad = tmp.write(
        "several-bad.toml",
        "[machine]\nname = \"x\"\narch = \"vax\"\n",
    );
    let bad = bad.to_str().unwrap();
    let ok_line = |name: &str| {
        format!(
            "{name}: ok: machine reference-server (x86_64), 1 host bridge(s), 15 devices, 11 IOMMU groups, 4 p2pmem provider(s); assembles with --iommu strict, lazy, off\n"
        )
    };
    let arch_error = format!(
        "unidma: {bad}:3:8: machine.arch: unknown arch \"vax\"; expected one of x86_64, arm64, powerpc64, riscv64, s390x\n"
    );

    // Good, bad, stdin: every file reported, the worst exit code (2).
    let (code, out, err) = unidma_tests::run_cli_with_stdin(
        &["check", good, bad, "-"],
        dma_sim::machine::REFERENCE_TOML.as_bytes(),
    );
    assert_eq!(code, 2);
    assert_eq!(out, format!("{}{}", ok_line(good), ok_line("<stdin>")));
    assert_eq!(err, arch_error);

    // All good: exit 0.
    let (code, out, err) = unidma_tests::run_cli_with_stdin(
        &["check", "-", good],
        dma_sim::machine::REFERENCE_TOML.as_bytes(),
    );
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, format!("{}{}", ok_line("<stdin>"), ok_line(good)));

    // JSON: one line per file, in order.
    let (code, out, _) =
        unidma_tests::run_cli_with_stdin(&["check", "--json", bad, "-"], b"[machine]\n");
    assert_eq!(code, 2);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["file"], bad);
    assert_eq!(lines[0]["field"], "machine.arch");
    assert_eq!(lines[1]["file"], "<stdin>");
    assert_eq!(lines[1]["ok"], false);

    // Bad input on stdin is named `<stdin>`.
    let (code, out, err) = unidma_tests::run_cli_with_stdin(&["check", "-"], b"\xff");
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "unidma: <stdin>: file: stream did not contain valid UTF-8\n"
    );

    // Standard input can be read once.
    let (code, out, err) = unidma_tests::run_cli_with_stdin(&["check", "-", good, "-"], b"");
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "unidma: standard input (`-`) can be checked only once\n"
    );
}

#[test]
fn check_good_and_bad_files() {
    let tmp = TempDir::new("cli");
    let good = tmp.write("good.toml", dma_sim::machine::REFERENCE_TOML);
    let (code, out, _) = run(&["check", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("ok: machine reference-server (x86_64), 1 host bridge(s), 15 devices"),
        "{out}"
    );
    let bad_src = dma_sim::machine::REFERENCE_TOML.replacen(
        "parent = \"0000:02:01.0\"",
        "parent = \"0000:0f:01.0\"",
        1,
    );
    let bad = tmp.write("bad.toml", &bad_src);
    let (code, _, err) = run(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    let line = bad_src
        .lines()
        .position(|l| l.contains("0000:0f:01.0"))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("bad.toml:{line}:")), "{err}");
    assert!(err.contains("device[8].parent"), "{err}");
    let (code, out, _) = run(&["check", bad.to_str().unwrap(), "--json"]);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["line"], line);
    assert_eq!(v["field"], "device[8].parent");
    // A custom machine through --machine.
    let (code, out, _) = run(&["report", "--machine", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("good.toml"));
}

#[test]
fn topo_dot_highlights_routes() {
    let (code, out, _) = run(&["topo", "--dot"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("digraph \"reference-server\" {"));
    assert!(out.contains("\"0000:02:00.0\" -> \"0000:03:00.0\";"));
    assert!(out.contains(
        "\"0000:03:00.0\" -> \"0000:05:00.0\" [color=green, style=solid, constraint=false, label=\"p2p rw d=4\"];"
    ));
    assert!(out.contains("\"0000:03:00.0\" -> \"0000:06:00.0\" [color=orange, style=dashed"));
    assert!(out.trim_end().ends_with('}'));
    let v = json(&["topo", "--dot", "--json"]);
    assert!(v["dot"].as_str().unwrap().starts_with("digraph"));
    let (code, out, _) = run(&["topo"]);
    assert_eq!(code, 0);
    assert!(out
        .contains("\\-00:08.0 1002:164e Advanced Micro Devices, Inc. [AMD/ATI] Raphael (apu-gfx)"));
}

#[test]
fn acs_parameters_change_verdicts_and_groups() {
    // Default: gpu0's downstream port redirects, so nvme0 -> gpu0 goes
    // through the (write-only) host bridge.
    let (code, _, _) = run(&["p2p", "nvme0", "gpu0", "--access", "read"]);
    assert_eq!(code, 1);
    let (code, out, _) = run(&[
        "p2p",
        "nvme0",
        "gpu0",
        "--access",
        "read",
        "--disable-acs-redir",
        "0000:02:03.0",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("bus_addr distance 4 read yes write yes"),
        "{out}"
    );
    // Turning redirect on at nvme1's port reroutes nvme0 -> nvme1 upstream.
    let v = json(&["report", "--json", "--config-acs", "xxx11xx@02:01.0"]);
    let e = v["p2p"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["provider"] == "0000:03:00.0" && e["client"] == "0000:04:00.0")
        .unwrap()
        .clone();
    assert_eq!(e["map_type"], "thru_host_bridge");
    assert_eq!(v["machine"]["generation"], 1);
    let (code, _, err) = run(&["report", "--config-acs", "12@02:01.0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--config-acs"), "{err}");
}

/// `unidma gen` machines pass `check` (they assemble in every mode), and
/// the streamed `report --json` is one valid document with every ordered
/// (provider, client) pair: providers × (endpoints − 1).
#[test]
fn generated_machines_check_and_report_every_pair() {
    let tmp = TempDir::new("gen");
    for (shape, n, k) in [("switch", "300", "12"), ("flat", "600", "9")] {
        let (code, toml, err) = run(&["gen", "--functions", n, "--shape", shape, "--providers", k]);
        assert_eq!(code, 0, "{err}");
        let p = tmp.write(&format!("{shape}.toml"), &toml);
        let p = p.to_str().unwrap();
        let (code, out, err) = run(&["check", p]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("assembles with --iommu strict, lazy, off"),
            "{out}"
        );
        let v = json(&["report", "--machine", p, "--json"]);
        let endpoints = v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| matches!(d["kind"].as_str(), Some("endpoint" | "rc_endpoint")))
            .count();
        let k: usize = k.parse().unwrap();
        assert_eq!(v["p2pmem"].as_array().unwrap().len(), k, "{shape}");
        assert_eq!(
            v["p2p"].as_array().unwrap().len(),
            k * (endpoints - 1),
            "{shape}"
        );
        assert_eq!(v["p2p_errors"], serde_json::json!([]), "{shape}");
        assert_eq!(v["p2p_empty"], Value::Null, "{shape}");
    }
}
