//! Every workspace crate must package (`cargo package`, which `.ci/run`
//! runs): a package holds only the files under its own directory, so an
//! `include_str!`/`include_bytes!` that reaches outside it breaks the
//! package. The embedded reference machine is therefore a copy inside
//! `dma-sim`, which must stay byte-identical to the example users read.

use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `members = [...]` of the root manifest.
fn members() -> Vec<PathBuf> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let start = text.find("members = [").expect("workspace members");
    let rest = &text[start + "members = [".len()..];
    let end = rest.find(']').expect("end of members");
    let mut v: Vec<PathBuf> = rest[..end]
        .split(',')
        .map(|s| s.trim().trim_matches('"'))
        .filter(|s| !s.is_empty())
        .map(|s| root().join(s))
        .collect();
    v.push(root());
    v
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            // Another package (has its own manifest) or build output.
            if p.join("Cargo.toml").exists() || p.ends_with("target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `a/b/../c` without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The string literal arguments of every `include_str!`/`include_bytes!`.
fn includes(src: &str) -> Vec<String> {
    let mut v = Vec::new();
    for mac in ["include_str!(", "include_bytes!("] {
        let mut rest = src;
        while let Some(i) = rest.find(mac) {
            rest = &rest[i + mac.len()..];
            let arg = rest.trim_start();
            if let Some(lit) = arg.strip_prefix('"') {
                if let Some(end) = lit.find('"') {
                    v.push(lit[..end].to_string());
                }
            }
        }
    }
    v
}

#[test]
fn every_include_stays_inside_its_package() {
    let mut outside = Vec::new();
    for pkg in members() {
        let mut files = Vec::new();
        for sub in ["src", "tests", "benches", "examples"] {
            rust_files(&pkg.join(sub), &mut files);
        }
        if pkg == root() {
            // The root package's own files only (members are packaged alone).
            files.retain(|f| !members().iter().any(|m| *m != root() && f.starts_with(m)));
        }
        for f in files {
            let src = std::fs::read_to_string(&f).unwrap();
            for inc in includes(&src) {
                let target = normalize(&f.parent().unwrap().join(&inc));
                if !target.starts_with(normalize(&pkg)) {
                    outside.push(format!(
                        "{}: {inc:?} is outside package {}",
                        f.display(),
                        pkg.display()
                    ));
                }
            }
        }
    }
    assert!(
        outside.is_empty(),
        "files a package cannot ship:\n{}",
        outside.join("\n")
    );
}

#[test]
fn embedded_reference_machine_is_the_example_byte_for_byte() {
    let example =
        std::fs::read_to_string(root().join("examples/machines/reference-server.toml")).unwrap();
    assert!(
        dma_sim::machine::REFERENCE_TOML == example,
        "dma-api/sim/machines/reference-server.toml (embedded) differs from \
         examples/machines/reference-server.toml: copy the example over it"
    );
}
