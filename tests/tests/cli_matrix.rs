//! `unidma matrix`: each filter, bad filter values, agreement with the
//! report's matrix, escaped names, and `--oracle` on every command that
//! takes it.

use serde_json::Value;
use unidma_tests::TempDir;

fn run(args: &[&str]) -> (i32, String, String) {
    unidma_tests::run_cli(args)
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

fn cells(v: &Value) -> Vec<Value> {
    v["cells"].as_array().unwrap().clone()
}

fn refused(c: &Value) -> bool {
    ["read", "write"]
        .iter()
        .any(|a| c[a]["allowed"] == false || !c[a]["arch_veto"].is_null())
}

const MACHINES: [&str; 5] = [
    "amd-zen-two-gpus",
    "arm64-soc",
    "reference-server",
    "s390x-zpci",
    "two-socket",
];

/// An example machine, or the two-socket test machine (tests/machines).
fn machine(name: &str) -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    if name == "two-socket" {
        return format!("{dir}/machines/{name}.toml");
    }
    format!("{dir}/../examples/machines/{name}.toml")
}

/// Every cell of `matrix --json` is the report's pair: same verdicts, same
/// arch veto, in both oracles, on every example machine.
#[test]
fn matrix_cells_are_the_report_pairs_on_every_machine() {
    for name in MACHINES {
        let file = machine(name);
        for oracle in ["linux", "hardware"] {
            let m = json(&["matrix", "--machine", &file, "--oracle", oracle, "--json"]);
            let r = json(&["report", "--machine", &file, "--oracle", oracle, "--json"]);
            assert_eq!(m["oracle"], oracle);
            assert_eq!(r["oracle"], oracle);
            let pairs = r["p2p"].as_array().unwrap();
            let cs = cells(&m);
            assert_eq!(cs.len(), pairs.len(), "{name} {oracle}");
            for (c, p) in cs.iter().zip(pairs) {
                assert_eq!(c["provider"], p["provider"]);
                assert_eq!(c["client"], p["client"]);
                assert_eq!(c["read"]["allowed"], p["read"], "{name} {oracle} {c}");
                assert_eq!(c["write"]["allowed"], p["write"], "{name} {oracle} {c}");
                let vetoed =
                    !c["read"]["arch_veto"].is_null() || !c["write"]["arch_veto"].is_null();
                assert_eq!(vetoed, p["arch_allows"] == false, "{name} {oracle} {c}");
                if oracle == "linux" {
                    assert_eq!(c["read"]["map_type"], p["map_type"]);
                    assert_eq!(c["write"]["map_type"], p["map_type"]);
                }
                assert!(!c["reason"].as_str().unwrap().is_empty());
            }
        }
    }
}

#[test]
fn provider_filter_keeps_one_row() {
    let all = cells(&json(&["matrix", "--json"]));
    for spec in ["gpu0", "0000:06:00.0", "06:00.0"] {
        let v = json(&["matrix", "--provider", spec, "--json"]);
        let cs = cells(&v);
        let want: Vec<&Value> = all
            .iter()
            .filter(|c| c["provider"] == "0000:06:00.0")
            .collect();
        assert!(!want.is_empty());
        assert_eq!(cs.iter().collect::<Vec<_>>(), want, "{spec}");
        assert_eq!(v["filter"]["provider"], spec);
    }
    let (code, out, _) = run(&["matrix", "--provider", "gpu0"]);
    assert_eq!(code, 0);
    let rows: Vec<&str> = out.lines().skip(2).take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].trim_start().starts_with("gpu0 "), "{out}");
}

#[test]
fn client_filter_keeps_one_column() {
    let all = cells(&json(&["matrix", "--json", "--oracle", "hardware"]));
    let v = json(&[
        "matrix", "--client", "nvme0", "--json", "--oracle", "hardware",
    ]);
    let want: Vec<&Value> = all
        .iter()
        .filter(|c| c["client"] == "0000:03:00.0")
        .collect();
    assert!(want.len() >= 3);
    assert_eq!(cells(&v).iter().collect::<Vec<_>>(), want);
    let (_, out, _) = run(&["matrix", "--client", "nvme0"]);
    let header = out.lines().nth(1).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["nvme0"],
        "{out}"
    );
}

#[test]
fn refused_filter_keeps_exactly_the_refused_cells() {
    for name in MACHINES {
        let file = machine(name);
        for oracle in ["linux", "hardware"] {
            let all = cells(&json(&[
                "matrix",
                "--machine",
                &file,
                "--oracle",
                oracle,
                "--json",
            ]));
            let v = json(&[
                "matrix",
                "--machine",
                &file,
                "--oracle",
                oracle,
                "--refused",
                "--json",
            ]);
            let want: Vec<&Value> = all.iter().filter(|c| refused(c)).collect();
            assert_eq!(
                cells(&v).iter().collect::<Vec<_>>(),
                want,
                "{name} {oracle}"
            );
        }
    }
    // On the reference server the hardware oracle lets gpu0's functions
    // reach each other inside the device: not refused, shown as `.`.
    let (_, out, _) = run(&["matrix", "--refused", "--oracle", "hardware"]);
    let gpu0 = out
        .lines()
        .find(|l| l.trim_start().starts_with("gpu0 "))
        .unwrap();
    assert!(gpu0.contains("R:NO/W:PIX"), "{out}");
    assert!(!gpu0.contains(" X "), "{out}");
    // Combined with --provider: a row with nothing refused says so.
    let (code, out, _) = run(&[
        "matrix",
        "--refused",
        "--provider",
        "nvme0",
        "--client",
        "nvme1",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("(no refused cell)"), "{out}");
}

/// Bad filter values exit 2 with a message naming the value, and print
/// nothing on stdout.
#[test]
fn bad_filter_values_are_typed_errors_naming_the_value() {
    for (args, needles) in [
        (
            &["matrix", "--provider", "bogus"][..],
            &["--provider \"bogus\"", "no device \"bogus\""][..],
        ),
        (
            &["matrix", "--provider", "nvme1"],
            &["--provider \"nvme1\"", "registers no p2pmem"],
        ),
        (
            &["matrix", "--provider", "0000:09:00.0"],
            &["--provider \"0000:09:00.0\"", "no device"],
        ),
        (
            &["matrix", "--client", "nope", "--json"],
            &["--client \"nope\"", "no device \"nope\""],
        ),
        (
            &["matrix", "--client", "switch-up"],
            &["--client \"switch-up\"", "not an endpoint"],
        ),
        (
            &["matrix", "--client", "0000:02:00.0", "--refused"],
            &["--client \"0000:02:00.0\"", "switch_downstream"],
        ),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed {out}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
    }
    let (code, _, err) = run(&["matrix", "--oracle", "kernel"]);
    assert_eq!(code, 2);
    assert!(err.contains("kernel"), "{err}");
}

/// Device names are escaped in the grid: a space or an escape sequence in
/// a name cannot shift the columns or reach the terminal.
#[test]
fn device_names_are_escaped_in_the_grid() {
    let src = std::fs::read_to_string(machine("reference-server")).unwrap();
    let src = src
        .replace("name = \"nvme1\"", "name = \"nv me\\u001b[31m\"")
        .replace("name = \"gpu0\"", "name = \"g\\\\pu\"");
    let tmp = TempDir::new("matrix");
    let file = tmp.write("escaped.toml", src);
    let (code, out, err) = run(&["matrix", "--machine", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\u{1b}'), "{out}");
    assert!(out.contains("nv\\u{20}me\\u{1b}[31m"), "{out}");
    assert!(out.contains("g\\\\pu"), "{out}");
    let header = out.lines().nth(1).unwrap();
    assert_eq!(header.split_whitespace().count(), 7, "{out}");
}

/// `report`, `p2p` and `map` say which oracle they used, text and JSON.
#[test]
fn every_command_names_its_oracle() {
    for oracle in ["linux", "hardware"] {
        let (_, out, _) = run(&["report", "--oracle", oracle]);
        assert!(out.contains(&format!("; oracle {oracle}):")), "{out}");
        let (_, out, _) = run(&["p2p", "gpu0", "nvme0", "--oracle", oracle]);
        assert!(out.starts_with(&format!("oracle: {oracle}\n")), "{out}");
        let (_, out, _) = run(&["p2p", "gpu0", "nvme0", "--oracle", oracle, "--json"]);
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap()["oracle"],
            oracle
        );
        let args = [
            "map",
            "rdma0",
            "--phys",
            "0x50_0000_0000",
            "--len",
            "4K",
            "--dir",
            "from-device",
            "--oracle",
            oracle,
        ];
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("  oracle:  {oracle} (")), "{out}");
        let mut a = args.to_vec();
        a.push("--json");
        let v = json(&a);
        assert_eq!(v["oracle"], oracle);
        // The mapping itself follows the dispatcher (Linux) either way.
        assert_eq!(v["route"]["map_type"], "thru_host_bridge");
        if oracle == "hardware" {
            let h = &v["hardware_route"][0];
            assert_eq!(h["access"], "write");
            assert_eq!(h["map_type"], "bus_addr");
            assert_eq!(h["allowed"], true);
        } else {
            assert!(v["hardware_route"].is_null());
        }
    }
}

/// The hardware oracle changes `p2p`'s verdict where hardware and Linux
/// differ on the reference server: gpu0's two functions reach each other
/// inside the device (Linux: through the host bridge, reads refused).
#[test]
fn p2p_hardware_oracle_allows_inside_the_device() {
    let (code, _, _) = run(&["p2p", "gpu0", "gpu0-audio", "--access", "read"]);
    assert_eq!(code, 1);
    let (code, out, _) = run(&[
        "p2p",
        "gpu0",
        "gpu0-audio",
        "--access",
        "read",
        "--oracle",
        "hardware",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("bus_addr"), "{out}");
    assert!(out.contains("delivered inside the device"), "{out}");
}

/// Two switches between provider and client: `PXB`; one: `PIX`.
#[test]
fn several_switches_are_pxb() {
    let dev = |bdf: &str, kind: &str, parent: Option<&str>, extra: &str| {
        format!(
            "[[device]]\nbdf = \"{bdf}\"\nkind = \"{kind}\"\n{}vendor = 0x10b5\ndevice = 0x8747\nclass = {}\n{extra}\n",
            parent.map_or(String::new(), |p| format!("parent = \"{p}\"\n")),
            if kind == "endpoint" { "0x010802" } else { "0x060400" }
        )
    };
    let mut src = String::from(
        "[machine]\nname = \"two-switches\"\narch = \"x86_64\"\ncpu_vendor = \"intel\"\ncpu_family = 6\n\
         [[ram]]\nstart = 0x0\nsize = \"2GiB\"\n\
         [[host_bridge]]\nname = \"pci0000:00\"\ndomain = 0\nbus = 0\nmmio = [{ cpu = 0xc000_0000, size = 0x1000_0000 }]\n",
    );
    src += &dev("0000:00:01.0", "root_port", None, "");
    src += &dev("0000:01:00.0", "switch_upstream", Some("0000:00:01.0"), "");
    src += &dev(
        "0000:02:00.0",
        "switch_downstream",
        Some("0000:01:00.0"),
        "",
    );
    src += &dev(
        "0000:02:01.0",
        "switch_downstream",
        Some("0000:01:00.0"),
        "",
    );
    src += &dev("0000:03:00.0", "switch_upstream", Some("0000:02:00.0"), "");
    src += &dev(
        "0000:04:00.0",
        "switch_downstream",
        Some("0000:03:00.0"),
        "",
    );
    src += &dev(
        "0000:04:01.0",
        "switch_downstream",
        Some("0000:03:00.0"),
        "",
    );
    src += &dev(
        "0000:05:00.0",
        "endpoint",
        Some("0000:04:00.0"),
        "name = \"deep\"\nbars = [{ index = 0, addr = 0xc000_0000, size = \"1M\", mem64 = true, prefetchable = true }]\np2pmem = [{ bar = 0, publish = true }]",
    );
    src += &dev(
        "0000:06:00.0",
        "endpoint",
        Some("0000:04:01.0"),
        "name = \"near\"",
    );
    src += &dev(
        "0000:07:00.0",
        "endpoint",
        Some("0000:02:01.0"),
        "name = \"far\"",
    );
    let tmp = TempDir::new("pxb");
    let file = tmp.write("two-switches.toml", src);
    let path = file.to_str().unwrap().to_string();
    let v = json(&["matrix", "--machine", &path, "--json"]);
    let (_, out, _) = run(&["matrix", "--machine", &path]);
    let code = |client: &str| {
        cells(&v)
            .iter()
            .find(|c| c["client_name"] == client)
            .map(|c| c["code"].as_str().unwrap().to_string())
    };
    assert_eq!(code("near").as_deref(), Some("PIX"), "{out}");
    assert_eq!(code("far").as_deref(), Some("PXB"), "{out}");
    assert!(out.contains("PXB"), "{out}");
}
