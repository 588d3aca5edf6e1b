//! PCI names in the CLI: the embedded table by default in tests, a
//! database named by `--pci-ids`, and a malformed database refused with
//! its line and column.

use unidma_tests::{run_cli, TempDir};

#[test]
fn embedded_names_show_in_report_topo_and_p2p() {
    let (code, out, _) = run_cli(&["report"]);
    assert_eq!(code, 0);
    assert!(out.contains(
        "03:00.0 144d:a824 Samsung Electronics Co Ltd NVMe SSD Controller PM173X (nvme0)"
    ));
    let (_, out, _) = run_cli(&["p2p", "nvme0", "nvme1"]);
    assert!(
        out.starts_with(
            "oracle: linux\n\
             provider 0000:03:00.0 (nvme0): 144d:a824 Samsung Electronics Co Ltd NVMe SSD Controller PM173X\n\
             client 0000:04:00.0 (nvme1): 144d:a824 Samsung"
        ),
        "{out}"
    );
    let (_, out, _) = run_cli(&["topo", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let d = &v["devices"][0];
    assert_eq!(d["vendor_name"], "Intel Corporation");
    assert_eq!(d["device_name"], "Sky Lake-E DMI3 Registers");
}

#[test]
fn pci_ids_option_replaces_the_table() {
    let tmp = TempDir::new("names");
    let p = tmp.write(
        "custom.ids",
        "# test database\n144d  Samsung (test)\n\ta824  Test Drive \"X\"\n",
    );
    let (code, out, err) = run_cli(&["report", "--pci-ids", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("03:00.0 144d:a824 Samsung (test) Test Drive \"X\" (nvme0)"));
    // IDs the database lacks print as lspci prints them.
    assert!(out.contains("00:00.0 8086:2020 Device 8086:2020 (host-bridge)"));
    let (_, out, _) = run_cli(&["report", "--json", "--pci-ids", p.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let host = &v["devices"][0];
    assert_eq!(host["vendor_name"], serde_json::Value::Null);
}

#[test]
fn a_malformed_database_is_bad_input_naming_line_and_column() {
    let tmp = TempDir::new("names");
    let p = tmp.write("bad.ids", "8086  Intel Corporation\n\t20g0  Bad ID\n");
    let (code, out, err) = run_cli(&["topo", "--pci-ids", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("bad.ids:2:2: device ID \"20g0\" is not 4 hexadecimal digits"),
        "{err}"
    );
    let missing = p.with_file_name("absent.ids");
    let (code, _, err) = run_cli(&[
        "p2p",
        "nvme0",
        "nvme1",
        "--pci-ids",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("absent.ids"), "{err}");
}
