//! `unidma topo --svg`: a well-formed standalone picture for every example
//! machine, with hostile names escaped; the JSON form wraps the same text.

use unidma_tests::xml_check::check;
use unidma_tests::{edit_once, run_cli, TempDir};

const MACHINES: &[&str] = &[
    "reference-server",
    "amd-zen-two-gpus",
    "arm64-soc",
    "s390x-zpci",
];

fn machine(name: &str) -> String {
    format!(
        "{}/../examples/machines/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn every_example_machine_gives_well_formed_svg() {
    for name in MACHINES {
        let (code, out, err) = run_cli(&["topo", "--svg", "--machine", &machine(name)]);
        assert_eq!(code, 0, "{name}: {err}");
        check(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(out.trim_end().ends_with("</svg>"));
        let (_, json, _) = run_cli(&["topo", "--svg", "--json", "--machine", &machine(name)]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["svg"].as_str(), Some(out.as_str()), "{name}");
    }
}

#[test]
fn routes_are_coloured_like_the_dot_output() {
    let (_, out, _) = run_cli(&["topo", "--svg"]);
    // nvme0 -> rdma0: by bus address through the switch (green, solid);
    // nvme0 -> gpu0: through the host bridge (orange, dashed).
    let route = |from: &str, to: &str| {
        let key = format!("<title>{from} -&gt; {to}: ");
        let at = out
            .find(&key)
            .unwrap_or_else(|| panic!("no route {from} -> {to}"));
        out[at..].lines().nth(1).unwrap().to_string()
    };
    let bus = route("0000:03:00.0", "0000:05:00.0");
    assert!(
        bus.contains("stroke=\"green\"") && !bus.contains("dasharray"),
        "{bus}"
    );
    let host = route("0000:03:00.0", "0000:06:00.0");
    assert!(
        host.contains("stroke=\"orange\"") && host.contains("stroke-dasharray"),
        "{host}"
    );
    // Providers are bold, and the legend says what they are.
    assert!(out.contains("P2P provider (registered p2pmem)"));
}

#[test]
fn hostile_names_are_escaped() {
    let text = edit_once(
        dma_sim::machine::REFERENCE_TOML,
        "name = \"nvme0\"",
        "name = \"nv<me>&\\\"0'\\u001b\"",
    );
    let text = edit_once(&text, "name = \"reference-server\"", "name = \"</svg><x>\"");
    let tmp = TempDir::new("svg");
    let m = tmp.write("hostile.toml", text);
    let ids = tmp.write(
        "hostile.ids",
        "144d  Evil <Corp> & \"Sons\"\n\ta824  ]]> '\u{7}'\n",
    );
    let (code, out, err) = run_cli(&[
        "topo",
        "--svg",
        "--machine",
        m.to_str().unwrap(),
        "--pci-ids",
        ids.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    check(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(
        out.contains("nv&lt;me&gt;&amp;&quot;0&apos;\\u{001b}"),
        "{out}"
    );
    assert!(out.contains("&lt;/svg&gt;&lt;x&gt;"));
    assert!(out.contains("Evil &lt;Corp&gt; &amp; &quot;Sons&quot;"));
    assert!(out.contains("]]&gt; &apos;\\u{0007}&apos;"));
}
