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
    assert!(out.starts_with(
        "0000:03:00.0 -> 0000:06:00.0: thru_host_bridge distance 4 read no write yes\n  \
         - common upstream device 0000:01:00.0\n  \
         - ACS redirect (RR|CR) set on 0000:02:03.0"
    ), "{out}");
    let (code, out, _) = run(&["report", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let r = v["p2p"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider"] == "0000:03:00.0" && r["client"] == "0000:06:00.0")
        .unwrap();
    assert_eq!(r["reason"].as_array().unwrap().len(), 4, "{r}");
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
