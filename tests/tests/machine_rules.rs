//! The machine-file rules of docs/machine-format.md (*Names*, *Topology
//! rules*, *`check` assembles*), each on a small broken variant of the
//! reference machine: the exact message and exit code of `unidma check`.

use dma_sim::machine::REFERENCE_TOML;
use unidma_tests::{edit_once, run_cli, TempDir};

/// `line:col` of the first occurrence of `needle` in `text` (1-based).
fn place(text: &str, needle: &str) -> String {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the TOML"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    format!("{line}:{col}")
}

/// Runs `unidma check` on `body` (written as `name`); asserts exit 2 and
/// that stderr is exactly `unidma: FILE:<place of at>: <field>: <message>`.
fn refused(name: &str, body: &str, at: &str, field: &str, message: &str) {
    let tmp = TempDir::new("rules");
    let path = tmp.write(name, body);
    let p = path.to_str().unwrap();
    let (code, out, err) = run_cli(&["check", p]);
    assert_eq!(code, 2, "{name}: accepted: {out}");
    assert_eq!(
        err,
        format!("unidma: {p}:{}: {field}: {message}\n", place(body, at)),
        "{name}"
    );
}

#[test]
fn two_devices_with_one_name_are_refused() {
    let body = edit_once(REFERENCE_TOML, "name = \"nvme1\"", "name = \"nvme0\"");
    refused(
        "dup-name.toml",
        &body,
        // The second `nvme0`: nvme1's name line.
        "\"nvme0\"\nkind = \"endpoint\"\nparent = \"0000:02:01.0\"",
        "device[8].name",
        "name \"nvme0\" is already the name of device[7] (0000:03:00.0); device names must be unique (a lookup by name would pick one)",
    );
}

#[test]
fn a_name_that_parses_as_a_bdf_is_refused() {
    for (name, bdf) in [
        ("03:00.0", "0000:03:00.0"),
        ("0000:0a:1f.7", "0000:0a:1f.7"),
    ] {
        let body = edit_once(
            REFERENCE_TOML,
            "name = \"rdma0\"",
            &format!("name = \"{name}\""),
        );
        refused(
            "bdf-name.toml",
            &body,
            &format!("\"{name}\""),
            "device[9].name",
            &format!(
                "name \"{name}\" parses as the BDF {bdf}; a device name must not look like a BDF (a lookup by it would find the device at {bdf})"
            ),
        );
    }
}

#[test]
fn a_root_port_with_a_parent_is_refused() {
    let body = edit_once(
        REFERENCE_TOML,
        "name = \"rp1\"\nkind = \"root_port\"\n",
        "name = \"rp1\"\nkind = \"root_port\"\nparent = \"0000:00:01.0\"\n",
    );
    refused(
        "root-port-parent.toml",
        &body,
        "\"0000:00:01.0\"\nvendor = 0x8086\ndevice = 0x2031",
        "device[12].parent",
        "a root port sits on a root bus and has no parent, but 0000:00:02.0 names parent 0000:00:01.0 (root_port)",
    );
}

#[test]
fn a_downstream_port_on_a_root_bus_is_refused() {
    let body = edit_once(
        REFERENCE_TOML,
        "name = \"rp1\"\nkind = \"root_port\"",
        "name = \"rp1\"\nkind = \"switch_downstream\"",
    );
    refused(
        "downstream-on-root-bus.toml",
        &body,
        "\"switch_downstream\"\nvendor = 0x8086",
        "device[12].parent",
        "a switch downstream port sits below a switch upstream port, but 0000:00:02.0 has no parent (it would be on root bus 00)",
    );
}

#[test]
fn a_downstream_port_below_a_root_port_is_refused() {
    let body = edit_once(
        REFERENCE_TOML,
        "name = \"nvme2\"\nkind = \"endpoint\"",
        "name = \"nvme2\"\nkind = \"switch_downstream\"",
    );
    refused(
        "downstream-below-root-port.toml",
        &body,
        "\"0000:00:02.0\"\nvendor = 0x144d",
        "device[13].parent",
        "a switch downstream port sits below a switch upstream port, but 0000:07:00.0 names parent 0000:00:02.0 (root_port)",
    );
}

#[test]
fn an_rc_integrated_endpoint_below_a_bridge_is_refused() {
    let body = edit_once(
        REFERENCE_TOML,
        "name = \"nvme2\"\nkind = \"endpoint\"",
        "name = \"nvme2\"\nkind = \"rc_endpoint\"",
    );
    refused(
        "rc-endpoint-below-bridge.toml",
        &body,
        "\"0000:00:02.0\"\nvendor = 0x144d",
        "device[13].parent",
        "a root-complex integrated endpoint sits on a root bus, never below a bridge, but 0000:07:00.0 names parent 0000:00:02.0 (root_port)",
    );
}

#[test]
fn an_upstream_port_below_an_upstream_port_is_refused() {
    let body = edit_once(
        REFERENCE_TOML,
        "name = \"switch-dp0\"\nkind = \"switch_downstream\"",
        "name = \"switch-dp0\"\nkind = \"switch_upstream\"",
    );
    refused(
        "upstream-below-upstream.toml",
        &body,
        "\"0000:01:00.0\"\nvendor = 0x10b5",
        "device[3].parent",
        "a switch upstream port cannot sit below a switch upstream port, but 0000:02:00.0 names parent 0000:01:00.0 (switch_upstream)",
    );
}

#[test]
fn a_child_on_its_bridges_own_bus_is_refused() {
    let body = edit_once(
        REFERENCE_TOML,
        "bdf = \"0000:07:00.0\"",
        "bdf = \"0000:00:03.0\"",
    );
    refused(
        "child-on-parent-bus.toml",
        &body,
        "\"0000:00:03.0\"",
        "device[13].bdf",
        "0000:00:03.0 is on bus 00, the own bus of its parent bridge 0000:00:02.0; a child sits on the bridge's secondary bus, below it",
    );
}

#[test]
fn a_root_port_with_children_on_two_buses_is_refused() {
    // nvme1 (04:00.0) moves below rp1, which already has nvme2 (07:00.0).
    let body = edit_once(
        REFERENCE_TOML,
        "parent = \"0000:02:01.0\"",
        "parent = \"0000:00:02.0\"",
    );
    refused(
        "two-buses.toml",
        &body,
        "\"0000:07:00.0\"",
        "device[13].bdf",
        "bridge 0000:00:02.0 has children on two buses: 0000:04:00.0 (device[8]) on bus 04 and 0000:07:00.0 on bus 07; a bridge has one secondary bus",
    );
}

#[test]
fn check_assembles_in_every_mode() {
    let tmp = TempDir::new("rules");
    let path = tmp.write("reference.toml", REFERENCE_TOML);
    let p = path.to_str().unwrap();
    let (code, out, err) = run_cli(&["check", p]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("{p}: ok: machine reference-server (x86_64), 1 host bridge(s), 15 devices, 11 IOMMU groups, 4 p2pmem provider(s); assembles with --iommu strict, lazy, off\n")
    );
    let (code, out, err) = run_cli(&["check", p, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["assembles"], serde_json::json!(["strict", "lazy", "off"]));
    assert_eq!(v["notes"], serde_json::json!([]));
}

/// zPCI cannot run untranslated (RAM's bus addresses lie in the MMIO
/// windows): that is the machine, not a mistake, and the default mode
/// assembles, so `check` passes with a note (as the scenarios skip).
#[test]
fn check_notes_an_impossible_iommu_off() {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/machines/s390x-zpci.toml"
    );
    let (code, out, err) = run_cli(&["check", p]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "{p}: ok: machine s390x-zpci (s390x), 4 host bridge(s), 4 devices, 4 IOMMU groups, 1 p2pmem provider(s); assembles with --iommu strict, lazy\n\
             {p}: note: --iommu off is impossible on this machine: host bridge pci0000:00 without IOMMU translation: RAM 0x0+0x1000000000 appears on the bus at 0x0, inside MMIO window bus 0x0+0x100000000; DMA there would be decoded as MMIO\n"
        )
    );
    let (code, out, _) = run_cli(&["check", p, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["assembles"], serde_json::json!(["strict", "lazy"]));
    assert_eq!(v["notes"].as_array().map(Vec::len), Some(1));
}

/// A file that loads but cannot assemble in its default mode fails
/// `check` (exit 2), naming the mode.
#[test]
fn check_refuses_a_machine_that_does_not_assemble() {
    let tmp = TempDir::new("rules");
    // No RAM below 4 GiB large enough for the page tables and the pools.
    let body = edit_once(REFERENCE_TOML, "size = \"2GiB\"", "size = \"4K\"");
    let path = tmp.write("no-low-ram.toml", &body);
    let p = path.to_str().unwrap();
    let (code, out, err) = run_cli(&["check", p]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        err,
        format!(
            "unidma: {p}: machine reference-server does not assemble with --iommu strict: no RAM range below 4 GiB holds 0x10000000 bytes (largest: 0x0)\n"
        )
    );
    let (code, out, _) = run_cli(&["check", p, "--json"]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["iommu"], "strict");
}

/// Bug: the file parser trimmed spaces, dropped every `_` and took a sign
/// (`"+2G"`, `"2G_"`, `" 0x1000"`); the one number grammar refuses them at
/// the field.
#[test]
fn numbers_outside_the_grammar_are_refused_at_their_field() {
    for (bad, why) in [
        ("\"+2GiB\"", "no sign is allowed"),
        ("\"2GiB_\"", "`_` must sit between two digits"),
        ("\" 2GiB\"", "spaces are not allowed"),
        ("\"2gib\"", "not a digit"),
    ] {
        let body = edit_once(REFERENCE_TOML, "size = \"2GiB\"", &format!("size = {bad}"));
        refused(
            "bad-number.toml",
            &body,
            bad,
            "ram[0].size",
            &format!(
                "{} is not a number: {why} (decimal or 0x hex, `_` only between digits, optional suffix K, M, G, T or KiB, MiB, GiB, TiB)",
                bad
            ),
        );
    }
}
