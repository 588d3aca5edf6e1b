//! Every example machine validates with `unidma check` and reports with its
//! arch; the s390x example shows the arch's P2P veto on every pair.

use serde_json::Value;
use std::path::PathBuf;
use unidma_tests::TempDir;

fn run(args: &[&str]) -> (i32, String, String) {
    unidma_tests::run_cli(args)
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/machines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_checks_and_reports_its_arch() {
    let files = examples();
    assert!(files.len() >= 4, "{files:?}");
    let mut arches = Vec::new();
    for f in &files {
        let path = f.to_str().unwrap();
        let v = json(&["check", path, "--json"]);
        assert_eq!(v["ok"], true, "{path}: {v}");
        let r = json(&["report", "--machine", path, "--json"]);
        assert_eq!(r["arch"]["name"], r["machine"]["arch"], "{path}");
        assert_eq!(r["arch"]["name"], v["arch"], "{path}");
        let (code, out, err) = run(&["report", "--machine", path]);
        assert_eq!(code, 0, "{path}: {err}");
        assert!(out.contains(&format!("\nArch {}:", v["arch"].as_str().unwrap())));
        arches.push(v["arch"].as_str().unwrap().to_string());
    }
    assert!(arches.iter().any(|a| a == "s390x"), "{arches:?}");
}

#[test]
fn s390x_vetoes_every_peer_pair() {
    let v = json(&[
        "report",
        "--machine",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/machines/s390x-zpci.toml"
        ),
        "--json",
    ]);
    let a = &v["arch"];
    assert_eq!(a["name"], "s390x");
    assert_eq!(a["cache_line_size"], 256);
    assert_eq!(a["always_coherent"], true);
    assert_eq!(a["default_coherent"], true);
    assert_eq!(a["mem_encrypt_bit"], Value::Null);
    assert_eq!(a["p2p"]["support"], "none");
    let why = a["p2p"]["why"].as_str().unwrap();
    assert!(why.contains("zPCI"), "{why}");
    let pairs = v["p2p"].as_array().unwrap();
    // The registered providers (nvme0's p2pmem; the RoCE ports' BARs are
    // not registered) against every other function.
    let providers = v["p2pmem"].as_array().unwrap().len();
    assert!(providers >= 1);
    assert_eq!(v["providers"], "registered");
    assert_eq!(pairs.len(), providers * 3);
    assert!(pairs.iter().any(|p| p["provider"] == "0000:00:00.0"));
    for p in pairs {
        assert_eq!(p["arch_allows"], false, "{p}");
        assert_eq!(p["arch_veto"], format!("arch: none ({why})"), "{p}");
    }
    // The p2p command refuses too, naming the arch.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/machines/s390x-zpci.toml"
    );
    let (code, out, _) = run(&["p2p", "--machine", path, "nvme0", "roce0"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("arch: none (zPCI"), "{out}");
}

#[test]
fn x86_reference_arch_allows_what_the_oracle_allows() {
    let v = json(&["report", "--json"]);
    let a = &v["arch"];
    assert_eq!(a["name"], "x86_64");
    assert_eq!(a["cache_line_size"], 64);
    assert_eq!(a["mem_encrypt_bit"], 47);
    assert_eq!(
        a["p2p"],
        serde_json::json!({"support": "full", "why": null})
    );
    for p in v["p2p"].as_array().unwrap() {
        assert_eq!(p["arch_allows"], true, "{p}");
        assert_eq!(p["arch_veto"], Value::Null, "{p}");
    }
    assert_eq!(v["warnings"], serde_json::json!([]));
    assert_eq!(v["notes"], serde_json::json!([]));
}

#[test]
fn powerpc_refuses_only_across_host_bridges() {
    let src =
        dma_sim::machine::REFERENCE_TOML.replacen("arch = \"x86_64\"", "arch = \"powerpc64\"", 1);
    let tmp = TempDir::new("examples");
    let f = tmp.write("ppc.toml", src);
    let v = json(&["report", "--machine", f.to_str().unwrap(), "--json"]);
    assert_eq!(v["arch"]["p2p"]["support"], "same_host_bridge");
    // One host bridge: every route stays below it, nothing is vetoed.
    assert!(v["p2p"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["arch_allows"] == true));
    // Two host bridges (the arm64 SoC as a POWER box): pairs across them
    // are vetoed, pairs below one are not.
    let soc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/machines/arm64-soc.toml"
    ))
    .unwrap()
    .replacen("arch = \"arm64\"", "arch = \"powerpc64\"", 1);
    let f = tmp.write("ppc-soc.toml", soc);
    let v = json(&["report", "--machine", f.to_str().unwrap(), "--json"]);
    let pair = |p: &str, c: &str| {
        v["p2p"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["provider"] == p && e["client"] == c)
            .unwrap()
            .clone()
    };
    let same = pair("0000:03:00.0", "0000:04:00.0");
    assert_eq!(same["map_type"], "bus_addr");
    assert_eq!(same["arch_allows"], true);
    let across = pair("0000:03:00.0", "0001:02:00.0");
    assert_eq!(across["arch_allows"], false);
    assert!(across["arch_veto"]
        .as_str()
        .unwrap()
        .starts_with("arch: same host bridge only (peer traffic cannot cross POWER PHBs"));
}
