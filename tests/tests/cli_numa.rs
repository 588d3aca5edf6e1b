//! NUMA nodes in `unidma report`: the host bridge's node on its tree line,
//! a function's where it differs, `numa_node` in JSON.

use dma_sim::machine::REFERENCE_TOML;
use unidma_tests::{edit_once, run_cli};

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
    let dir = std::env::temp_dir().join(format!("unidma-numa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("numa.toml");
    std::fs::write(&path, text).unwrap();
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
