//! The JSON outputs of `report`, `p2p` and `map` on every example machine
//! follow `docs/cli.schema.json`. The checker is a small subset of JSON
//! Schema (2020-12) written here, no schema crate: `$ref` to `#/$defs/…`,
//! `type` (one or a list), `properties`, `required`,
//! `additionalProperties: false`, `items`, `enum`, and the schema's own
//! `format`s (`unidma-hex`, `unidma-bdf`, `unidma-hex4`, `unidma-hex6`).
//! A keyword it does not know fails the test, so the schema cannot promise
//! what nobody checks.

use serde_json::Value;

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("schema type {other:?} unknown to the checker"),
    }
}

fn format_ok(f: &str, s: &str) -> bool {
    let hex = |x: &str| {
        !x.is_empty()
            && x.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    };
    match f {
        "unidma-hex" => s.strip_prefix("0x").is_some_and(hex),
        "unidma-hex4" => s.len() == 4 && hex(s),
        "unidma-hex6" => s.len() == 6 && hex(s),
        "unidma-bdf" => {
            let b = s.as_bytes();
            b.len() == 12
                && hex(&s[0..4])
                && b[4] == b':'
                && hex(&s[5..7])
                && b[7] == b':'
                && hex(&s[8..10])
                && b[10] == b'.'
                && (b'0'..=b'7').contains(&b[11])
        }
        other => panic!("schema format {other:?} unknown to the checker"),
    }
}

/// Every violation of `s` by `v` at `path`, appended to `errs`.
fn check(root: &Value, s: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    let s = s.as_object().expect("a schema is an object");
    for k in s.keys() {
        assert!(
            [
                "$ref",
                "type",
                "properties",
                "required",
                "additionalProperties",
                "items",
                "enum",
                "format",
                "$comment"
            ]
            .contains(&k.as_str()),
            "schema keyword {k:?} unknown to the checker"
        );
    }
    if let Some(r) = s.get("$ref") {
        let name = r
            .as_str()
            .unwrap()
            .strip_prefix("#/$defs/")
            .expect("local $ref");
        return check(root, &root["$defs"][name], v, path, errs);
    }
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
            _ => panic!("bad type keyword"),
        };
        if !ok {
            errs.push(format!("{path}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(e) = s.get("enum") {
        if !v.is_null() && !e.as_array().unwrap().contains(v) {
            errs.push(format!("{path}: {v} not in {e}"));
        }
    }
    if let (Some(f), Some(x)) = (s.get("format"), v.as_str()) {
        if !format_ok(f.as_str().unwrap(), x) {
            errs.push(format!("{path}: {x:?} is not {f}"));
        }
    }
    if let Some(o) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !o.contains_key(r.as_str().unwrap()) {
                errs.push(format!("{path}: missing required key {r}"));
            }
        }
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(root, ps, x, &format!("{path}.{k}"), errs),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errs.push(format!("{path}: key {k:?} not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            check(root, items, x, &format!("{path}[{i}]"), errs);
        }
    }
}

/// `args`' JSON output against `$defs/{def}`.
fn validate(def: &str, args: &[&str]) -> Value {
    let (_, out, err) = unidma_tests::run_cli(args);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {err}"));
    let root = schema();
    let mut errs = Vec::new();
    check(&root, &root["$defs"][def], &v, def, &mut errs);
    assert!(
        errs.is_empty(),
        "{args:?} breaks docs/cli.schema.json:\n{}",
        errs.join("\n")
    );
    v
}

/// The checker finds what it must: a missing key, an extra key, a wrong
/// type, a bad format (so a passing output means something).
#[test]
fn the_checker_refuses_bad_documents() {
    let root = schema();
    let good = validate("p2p", &["p2p", "nvme0", "nvme1", "--json"]);
    let bad = |edit: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        edit(&mut v);
        let mut errs = Vec::new();
        check(&root, &root["$defs"]["p2p"], &v, "p2p", &mut errs);
        errs
    };
    assert_eq!(
        bad(&|v| {
            v.as_object_mut().unwrap().remove("allowed");
        }),
        ["p2p: missing required key \"allowed\""]
    );
    assert_eq!(
        bad(&|v| v["extra"] = Value::Null),
        ["p2p: key \"extra\" not in the schema"]
    );
    assert_eq!(
        bad(&|v| v["routes"][0]["read"] = "yes".into()),
        ["p2p.routes[0].read: \"yes\" is not of type \"boolean\""]
    );
    assert_eq!(
        bad(&|v| v["routes"][0]["client"] = "04:00.0".into()),
        ["p2p.routes[0].client: \"04:00.0\" is not \"unidma-bdf\""]
    );
    assert_eq!(
        bad(&|v| {
            v["routes"][0]
                .as_object_mut()
                .unwrap()
                .insert("reason".into(), Value::Null);
        }),
        ["p2p.routes[0]: key \"reason\" not in the schema"]
    );
}

/// `report`, `p2p` and `map` on every example machine (and with ACS
/// overrides, and a refused, a bounced and a peer mapping) follow the schema.
#[test]
fn json_outputs_follow_the_schema() {
    for name in [
        "reference-server",
        "amd-zen-two-gpus",
        "arm64-soc",
        "s390x-zpci",
    ] {
        let file = format!(
            "{}/../examples/machines/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let r = validate("report", &["report", "--machine", &file, "--json"]);
        let p2pmem = r["p2pmem"].as_array().unwrap();
        let clients: Vec<String> = r["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == "endpoint" || d["kind"] == "rc_endpoint")
            .map(|d| d["bdf"].as_str().unwrap().to_string())
            .collect();
        for p in p2pmem {
            let provider = p["bdf"].as_str().unwrap();
            let mut args = vec!["p2p", provider];
            args.extend(
                clients
                    .iter()
                    .map(String::as_str)
                    .filter(|c| *c != provider),
            );
            args.extend(["--machine", &file, "--json"]);
            validate("p2p", &args);
            let start = p["ranges"][0]["start"].as_str().unwrap();
            for c in clients.iter().filter(|c| c.as_str() != provider) {
                for dir in ["to-device", "from-device"] {
                    validate(
                        "map",
                        &[
                            "map",
                            c,
                            "--phys",
                            start,
                            "--len",
                            "4K",
                            "--dir",
                            dir,
                            "--machine",
                            &file,
                            "--json",
                        ],
                    );
                }
            }
        }
        let ram = r["memory_map"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["kind"] == "ram")
            .unwrap();
        let start = ram["start"].as_str().unwrap();
        for c in &clients {
            for extra in [
                &[][..],
                &["--iommu", "off", "--force-bounce"],
                &["--force-bounce"],
            ] {
                if name == "s390x-zpci" && extra.contains(&"off") {
                    continue; // zPCI does not assemble without its IOMMU (exit 2)
                }
                let mut args = vec![
                    "map",
                    c,
                    "--phys",
                    start,
                    "--len",
                    "4K",
                    "--dir",
                    "bidirectional",
                    "--machine",
                    &file,
                    "--json",
                ];
                args.extend_from_slice(extra);
                validate("map", &args);
            }
        }
    }
    validate(
        "report",
        &[
            "report",
            "--json",
            "--disable-acs-redir",
            "0000:02:03.0;0000:09:00.0",
        ],
    );
    // The hardware oracle's per-access verdicts of a peer mapping.
    let v = validate(
        "map",
        &[
            "map",
            "rdma0",
            "--phys",
            "0x50_0000_0000",
            "--len",
            "4K",
            "--dir",
            "bidirectional",
            "--oracle",
            "hardware",
            "--json",
        ],
    );
    assert_eq!(v["hardware_route"].as_array().map(Vec::len), Some(2));
    for oracle in ["linux", "hardware"] {
        let v = validate("report", &["report", "--oracle", oracle, "--json"]);
        assert_eq!(v["oracle"], oracle);
    }
}
