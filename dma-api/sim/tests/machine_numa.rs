//! NUMA nodes in machine files: a host bridge's node is inherited by every
//! function below it unless the function gives its own (-1 for none), and
//! a value Linux cannot have is an error naming the field, line and column.

use dma_pci::topology::NumaNode;
use dma_sim::machine::Machine;

const BASE: &str = r#"
[machine]
name = "numa"
arch = "x86_64"

[[host_bridge]]
name = "socket0"
bus = 0
numa_node = 0

[[host_bridge]]
name = "socket1"
bus = 0x80
numa_node = 1

[[device]]
bdf = "00:01.0"
kind = "root_port"
vendor = 0x8086
device = 0x2030

[[device]]
bdf = "01:00.0"
parent = "00:01.0"
kind = "endpoint"
vendor = 0x144d
device = 0xa824

[[device]]
bdf = "80:01.0"
kind = "root_port"
vendor = 0x8086
device = 0x2030

[[device]]
bdf = "81:00.0"
parent = "80:01.0"
kind = "endpoint"
vendor = 0x144d
device = 0xa824
"#;

fn node(m: &Machine, bdf: &str) -> Option<NumaNode> {
    let t = &m.topology;
    t.device(t.lookup(bdf.parse().unwrap()).unwrap())
        .unwrap()
        .numa_node
}

#[test]
fn functions_inherit_their_host_bridges_node() {
    let m = Machine::from_toml_str("numa.toml", BASE).unwrap();
    let hb: Vec<_> = m
        .topology
        .host_bridges()
        .iter()
        .map(|h| h.numa_node)
        .collect();
    assert_eq!(hb, vec![NumaNode::new(0), NumaNode::new(1)]);
    assert_eq!(node(&m, "01:00.0"), NumaNode::new(0));
    assert_eq!(node(&m, "81:00.0"), NumaNode::new(1));
}

#[test]
fn a_function_may_override_and_minus_one_means_none() {
    let text = BASE.replacen(
        "bdf = \"81:00.0\"\n",
        "bdf = \"81:00.0\"\nnuma_node = -1\n",
        1,
    );
    let text = text.replacen(
        "bdf = \"80:01.0\"\n",
        "bdf = \"80:01.0\"\nnuma_node = 3\n",
        1,
    );
    let m = Machine::from_toml_str("numa.toml", &text).unwrap();
    assert_eq!(node(&m, "80:01.0"), NumaNode::new(3));
    assert_eq!(node(&m, "81:00.0"), None, "-1 is no node");
    let none = BASE.replacen("numa_node = 1\n", "numa_node = -1\n", 1);
    let m = Machine::from_toml_str("numa.toml", &none).unwrap();
    assert_eq!(m.topology.host_bridges()[1].numa_node, None);
    assert_eq!(node(&m, "81:00.0"), None);
    let absent = BASE
        .replace("numa_node = 0\n", "")
        .replace("numa_node = 1\n", "");
    let m = Machine::from_toml_str("numa.toml", &absent).unwrap();
    assert_eq!(node(&m, "01:00.0"), None);
}

#[test]
fn out_of_range_nodes_are_errors_at_the_field() {
    let text = BASE.replacen(
        "bdf = \"81:00.0\"\n",
        "bdf = \"81:00.0\"\nnuma_node = 1024\n",
        1,
    );
    let e = Machine::from_toml_str("numa.toml", &text).unwrap_err();
    assert_eq!(e.field, "device[3].numa_node");
    let line = text.lines().position(|l| l == "numa_node = 1024").unwrap() + 1;
    assert_eq!((e.line, e.column), (line, 13));
    assert!(
        e.message.contains("1024") && e.message.contains("0 to 1023"),
        "{e}"
    );

    let text = BASE.replacen("numa_node = 1\n", "numa_node = -2\n", 1);
    let e = Machine::from_toml_str("numa.toml", &text).unwrap_err();
    assert_eq!(e.field, "host_bridge[1].numa_node");
    assert!(e.message.contains("-2"), "{e}");

    let text = BASE.replacen("numa_node = 1\n", "numa_node = \"one\"\n", 1);
    assert!(Machine::from_toml_str("numa.toml", &text).is_err());
}
