//! NUMA nodes in `unidma report`: the host bridge's node on its tree line,
//! a function's where it differs, `numa_node` in JSON.

use dma_sim::machine::REFERENCE_TOML;
use unidma_tests::{edit_once, run_cli, TempDir};

#[test]
fn report_shows_bridge_nodes_and_function_overrides() {
    let text = edit_once(
        REFERENCE_TOML,
        "name = \"nvme2\"\n",
        "name = \"nvme2\"\nnuma_node = 1\n",
    );
    let text = edit_once(
        &text,
        "name = \"rdma0\"\n",
        "name = \"rdma0\"\nnuma_node = -1\n",
    );
    let tmp = TempDir::new("numa");
    let path = tmp.write("numa.toml", text);
    let p = path.to_str().unwrap();

    let (code, out, err) = run_cli(&["report", "--machine", p]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("-[0000:00]- pci0000:00 (8086:2020) iommu=on p2p read=no write=yes numa=0\n"),
        "{out}"
    );
    let line = |name: &str| {
        out.lines()
            .find(|l| l.contains(&format!("({name})")))
            .unwrap_or_else(|| panic!("no {name} in\n{out}"))
            .to_string()
    };
    assert!(
        line("nvme2").contains("] numa=1 BAR0="),
        "{}",
        line("nvme2")
    );
    assert!(line("rdma0").contains("] numa=none"), "{}", line("rdma0"));
    assert!(
        !line("nvme0").contains("numa="),
        "an inherited node is not repeated"
    );

    let (_, out, _) = run_cli(&["report", "--machine", p, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["host_bridges"][0]["numa_node"], 0);
    let dev = |name: &str| {
        v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(dev("nvme2")["numa_node"], 1);
    assert_eq!(dev("rdma0")["numa_node"], serde_json::Value::Null);
    assert_eq!(dev("nvme0")["numa_node"], 0);
}

/// The two-socket test machine: pci0000:00 and pci0000:40 on node 0,
/// pci0000:80 on node 1.
fn two_socket() -> String {
    let path = format!("{}/machines/two-socket.toml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `text` written to the machine file `TAG.toml` in `tmp`; its path.
fn machine_file(tmp: &TempDir, tag: &str, text: &str) -> String {
    let path = tmp.write(&format!("{tag}.toml"), text);
    path.to_str().unwrap().to_string()
}

/// `(provider, client) -> (code, provider_numa, client_numa)` of
/// `matrix --json`.
fn matrix_codes(
    file: &str,
    oracle: &str,
) -> std::collections::BTreeMap<(String, String), (String, serde_json::Value, serde_json::Value)> {
    let (code, out, err) = run_cli(&["matrix", "--machine", file, "--oracle", oracle, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                (
                    c["provider_name"].as_str().unwrap().to_string(),
                    c["client_name"].as_str().unwrap().to_string(),
                ),
                (
                    c["code"].as_str().unwrap().to_string(),
                    c["provider_numa"].clone(),
                    c["client_numa"].clone(),
                ),
            )
        })
        .collect()
}

fn code_of(
    cells: &std::collections::BTreeMap<
        (String, String),
        (String, serde_json::Value, serde_json::Value),
    >,
    p: &str,
    c: &str,
) -> String {
    cells
        .get(&(p.to_string(), c.to_string()))
        .unwrap_or_else(|| panic!("no cell {p} -> {c}"))
        .0
        .clone()
}

#[test]
fn matrix_tells_one_bridge_one_node_and_two_nodes_apart() {
    let tmp = TempDir::new("numa");
    let file = machine_file(&tmp, "two-socket", &two_socket());
    for oracle in ["linux", "hardware"] {
        let cells = matrix_codes(&file, oracle);
        assert_eq!(code_of(&cells, "gpu0", "nvme0"), "PHB", "one host bridge");
        assert_eq!(
            code_of(&cells, "gpu0", "gpu1"),
            "NODE",
            "two bridges, node 0"
        );
        assert_eq!(code_of(&cells, "gpu1", "nvme0"), "NODE");
        assert_eq!(code_of(&cells, "gpu0", "gpu2"), "SYS", "nodes 0 and 1");
        assert_eq!(code_of(&cells, "gpu2", "nvme0"), "SYS");
        let (_, pn, cn) = &cells[&("gpu2".to_string(), "gpu0".to_string())];
        assert_eq!((pn, cn), (&serde_json::json!(1), &serde_json::json!(0)));
    }
    let (code, out, _) = run_cli(&["matrix", "--machine", &file]);
    assert_eq!(code, 0);
    assert!(out.contains("\n  gpu0  X     PHB    NODE  SYS\n"), "{out}");
    assert!(
        out.contains("  SYS     through host bridges on two NUMA nodes (the inter-socket link)\n"),
        "{out}"
    );
    assert!(out.contains("  gpu2   0000:81:00.0  numa=1\n"), "{out}");
    assert!(!out.contains("NUMA nodes unknown"), "{out}");
}

/// A refusal wins over where the route would go: the node-1 host bridge
/// forwards no peer reads.
#[test]
fn a_refused_access_between_sockets_stays_no() {
    let tmp = TempDir::new("numa");
    let text = edit_once(
        &two_socket(),
        "numa_node = 1\n",
        "numa_node = 1\np2p_read = false\n",
    );
    let file = machine_file(&tmp, "no-read", &text);
    let cells = matrix_codes(&file, "hardware");
    assert_eq!(code_of(&cells, "gpu0", "gpu2"), "R:NO/W:SYS");
    assert_eq!(code_of(&cells, "gpu0", "gpu1"), "NODE");
}

/// Without nodes, routes between host bridges are XHB and the legend says
/// the nodes are unknown; one function without a node makes only its own
/// cross-bridge cells XHB; a function's own node (not its bridge's) is
/// what counts.
#[test]
fn unknown_and_overridden_nodes() {
    let tmp = TempDir::new("numa");
    let none = two_socket()
        .replace("numa_node = 0\n", "")
        .replace("numa_node = 1\n", "");
    assert!(!none.contains("numa_node"));
    let file = machine_file(&tmp, "none", &none);
    let cells = matrix_codes(&file, "linux");
    assert_eq!(code_of(&cells, "gpu0", "nvme0"), "PHB");
    assert_eq!(code_of(&cells, "gpu0", "gpu1"), "XHB");
    assert_eq!(code_of(&cells, "gpu0", "gpu2"), "XHB");
    assert!(cells.values().all(|(_, p, c)| p.is_null() && c.is_null()));
    let (_, out, _) = run_cli(&["matrix", "--machine", &file]);
    assert!(
        out.contains(
            "  (NUMA nodes unknown: no device here has one, so routes between host bridges are XHB)\n"
        ),
        "{out}"
    );
    assert!(out.contains("  gpu0   0000:01:00.0  numa=none\n"), "{out}");

    let text = edit_once(
        &two_socket(),
        "name = \"gpu2\"\n",
        "name = \"gpu2\"\nnuma_node = -1\n",
    );
    let text = edit_once(
        &text,
        "name = \"nvme0\"\n",
        "name = \"nvme0\"\nnuma_node = 1\n",
    );
    let file = machine_file(&tmp, "override", &text);
    let cells = matrix_codes(&file, "linux");
    assert_eq!(code_of(&cells, "gpu0", "gpu2"), "XHB");
    assert_eq!(code_of(&cells, "gpu0", "gpu1"), "NODE");
    assert_eq!(
        code_of(&cells, "gpu0", "nvme0"),
        "PHB",
        "one bridge, whatever the nodes"
    );
    assert_eq!(
        code_of(&cells, "gpu1", "nvme0"),
        "SYS",
        "nvme0's own node 1"
    );
    let (_, out, _) = run_cli(&["matrix", "--machine", &file]);
    assert!(!out.contains("NUMA nodes unknown"), "{out}");
}

#[test]
fn gen_spreads_bridges_over_nodes_and_refuses_bad_counts() {
    let tmp = TempDir::new("numa");
    for bad in ["0", "1025", "99999999999"] {
        let (code, out, err) = run_cli(&["gen", "--functions", "10", "--numa-nodes", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(out.is_empty(), "nothing half-done: {out}");
        assert_eq!(
            err.trim_end(),
            format!("unidma: --numa-nodes {bad}: a machine has 1 to 1024 NUMA nodes")
        );
    }
    let (code, _, err) = run_cli(&["gen", "--functions", "10", "--numa-nodes", "-1"]);
    assert_eq!(code, 2, "{err}");

    // 3 root buses of the flat shape on 2 nodes: buses 0 and 2 on node 0.
    let (code, text, err) = run_cli(&[
        "gen",
        "--functions",
        "600",
        "--shape",
        "flat",
        "--providers",
        "3",
        "--numa-nodes",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with(
        "# Generated by `unidma gen --functions 600 --shape flat --providers 3 --numa-nodes 2`."
    ));
    let file = machine_file(&tmp, "gen", &text);
    let cells = matrix_codes(&file, "linux");
    let count = |code: &str| cells.values().filter(|c| c.0 == code).count();
    // Providers nic0 (bus 0, node 0), nic200 (bus 0), nic400 (bus 1, node 1):
    // each sees its own bus as PHB, bus 2 as NODE or SYS.
    assert!(
        count("PHB") > 0 && count("NODE") > 0 && count("SYS") > 0,
        "{cells:?}"
    );
    assert_eq!(count("XHB"), 0);
    let (code, one, _) = run_cli(&[
        "gen",
        "--functions",
        "600",
        "--shape",
        "flat",
        "--providers",
        "3",
    ]);
    assert_eq!(code, 0);
    assert!(!one.contains("numa_node"), "one node is left unsaid");
}
