//! The `unidma` CLI, driven through `unidma::cli::run_args`.

use serde_json::Value;
use std::io::Write;

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
        "+-02:00.0 10b5:8747 switch-dp0",
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
        .find(|e| e["provider"] == "0000:06:00.0" && e["client"] == "0000:03:00.0")
        .unwrap();
    assert_eq!(e["map_type"], "thru_host_bridge");
    assert_eq!(e["distance"], 4);
    assert_eq!(e["read"], false);
    assert_eq!(e["write"], true);
    assert!(e["reason"][1].as_str().unwrap().contains("ACS redirect"));
    let groups = v["groups"].as_array().unwrap();
    assert!(groups
        .iter()
        .any(|g| g == &serde_json::json!(["0000:06:00.0", "0000:06:00.1"])));
    let p2pmem = v["p2pmem"].as_array().unwrap();
    let nvme0 = p2pmem.iter().find(|p| p["bdf"] == "0000:03:00.0").unwrap();
    assert_eq!(nvme0["published"], true);
    let rdma0 = p2pmem.iter().find(|p| p["bdf"] == "0000:05:00.0").unwrap();
    assert_eq!(rdma0["published"], false);
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

fn temp_file(name: &str, body: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("unidma-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(body.as_bytes()).unwrap();
    p
}

#[test]
fn check_good_and_bad_files() {
    let good = temp_file("good.toml", dma_sim::machine::REFERENCE_TOML);
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
    let bad = temp_file("bad.toml", &bad_src);
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
    assert!(out.contains("\\-00:08.0 1002:164e apu-gfx"));
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
