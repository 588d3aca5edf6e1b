use super::*;

const SAMPLE: &str = "\
#\tList of PCI IDs
# comment

8086  Intel Corporation
\t2030  Sky Lake-E PCI Express Root Port A
\t\t1028 0001  Some subsystem
10b5  PLX Technology, Inc.
\t8747  PEX 8747 48-Lane, 5-Port PCI Express Gen 3 (8.0 GT/s) Switch \r
C 01  Mass storage controller
\t08  Non-Volatile memory controller
\t\t02  NVM Express
";

fn err(text: &str) -> PciIdsError {
    match PciIds::parse(text) {
        Ok(ids) => panic!("{text:?} parsed: {ids:?}"),
        Err(e) => e,
    }
}

#[test]
fn parses_vendors_devices_and_skips_subsystems_and_classes() {
    let ids = PciIds::parse(SAMPLE).unwrap();
    assert_eq!(ids.vendor(0x8086), Some("Intel Corporation"));
    assert_eq!(
        ids.device(0x8086, 0x2030),
        Some("Sky Lake-E PCI Express Root Port A")
    );
    // Trailing blanks and a CR are trimmed.
    assert_eq!(
        ids.device(0x10b5, 0x8747),
        Some("PEX 8747 48-Lane, 5-Port PCI Express Gen 3 (8.0 GT/s) Switch")
    );
    assert_eq!((ids.vendor_count(), ids.device_count()), (2, 2));
}

#[test]
fn describe_reads_like_lspci() {
    let ids = PciIds::parse(SAMPLE).unwrap();
    assert_eq!(
        ids.describe(0x8086, 0x2030),
        "Intel Corporation Sky Lake-E PCI Express Root Port A"
    );
    assert_eq!(
        ids.describe(0x8086, 0x1234),
        "Intel Corporation Device 1234"
    );
    assert_eq!(ids.describe(0xabcd, 0x0001), "Device abcd:0001");
}

#[test]
fn errors_name_line_and_column() {
    let e = err("8086  Intel\n\t20x0  Bad\n");
    assert_eq!((e.line, e.column), (2, 2));
    assert!(
        matches!(&e.kind, PciIdsErrorKind::BadId { entry: "device", digits: 4, found } if found == "20x0"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "2:2: device ID \"20x0\" is not 4 hexadecimal digits"
    );

    let e = err("8086Intel\n");
    assert_eq!((e.line, e.column), (1, 1), "{e}");

    let e = err("8086\n");
    assert_eq!(
        (e.line, e.column, e.kind),
        (1, 5, PciIdsErrorKind::MissingName { entry: "vendor" })
    );

    let e = err("\t2030  Orphan\n");
    assert_eq!(
        (e.line, e.column, e.kind),
        (1, 2, PciIdsErrorKind::NoParent { entry: "device" })
    );

    let e = err("8086  Intel\n\t\t1028 0001  No device\n");
    assert_eq!((e.line, e.column), (2, 3));

    let e = err("8086  Intel\n\t2030  A\n\t\t1028 00011  x\n");
    assert_eq!((e.line, e.column), (3, 8), "{e}");

    let e = err("8086  Intel\n\t\t\t1  deep\n");
    assert_eq!(e.kind, PciIdsErrorKind::TooDeep { tabs: 3 });

    let e = err("8086  Intel\n\t2030  A\n1000  LSI\n8086  Again\n");
    assert_eq!(
        (e.line, e.kind),
        (
            4,
            PciIdsErrorKind::DuplicateVendor {
                vendor: 0x8086,
                first_line: 1
            }
        )
    );

    let e = err("8086  Intel\n\t2030  A\n\t2030  B\n");
    assert_eq!(
        (e.line, e.column),
        (3, 2),
        "a duplicate device is an error like pciutils' \"Duplicate entry\""
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let e = err("8086  Intél\n\t2030  Rööt\n\t20ä0  x\n");
    assert_eq!((e.line, e.column), (3, 2));
    let e = PciIds::parse_bytes(b"8086  Int\xc3\xa9l\n\t2030  A\xff\n").unwrap_err();
    assert_eq!((e.line, e.column, e.kind), (2, 9, PciIdsErrorKind::NotUtf8));
}

#[test]
fn the_embedded_table_parses_and_covers_every_example_vendor_pci_ids_knows() {
    let ids = PciIds::embedded().unwrap();
    for v in [
        0x1000, 0x1002, 0x1014, 0x1022, 0x104c, 0x10b5, 0x10de, 0x144d, 0x15b3, 0x1b96, 0x1d87,
        0x8086,
    ] {
        assert!(ids.vendor(v).is_some(), "{v:04x}");
    }
    // pci.ids has no vendor 1234 (arm64-soc's legacy devices), so the
    // excerpt has none either and lspci's fallback applies.
    assert_eq!(ids.vendor(0x1234), None);
    assert_eq!(ids.describe(0x1234, 0x0001), "Device 1234:0001");
    assert_eq!(
        ids.describe(0x144d, 0xa824),
        "Samsung Electronics Co Ltd NVMe SSD Controller PM173X"
    );
    // arm64-soc's root ports carry an ID pci.ids lists as a root port, so
    // they are never named as some other device (1e0f:0001, which they
    // carried before, is a KIOXIA NVMe SSD controller).
    assert_eq!(
        ids.describe(0x1d87, 0x0100),
        "Rockchip Electronics Co., Ltd RK3399 PCI Express Root Port"
    );
}
