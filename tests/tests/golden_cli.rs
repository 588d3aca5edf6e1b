//! Golden-file test of the `unidma` CLI's output.
//!
//! Refactors (moving modules between crates, renaming internals, reworking
//! the mapping layer) must keep every command's stdout and exit code
//! byte-identical: scripts and other tools parse the text and JSON output.
//! This test runs every case listed in `tests/golden/cases.txt` in process
//! (through [`unidma_tests::run_cli`]) and compares `exit: N`, a newline and
//! the command's stdout with `tests/golden/<case>.out`, byte for byte. Stderr
//! is not compared (it is shown on a mismatch).
//!
//! Manifest format: one case per line, the golden file (relative to
//! `tests/golden`), a tab, then the arguments separated by single spaces;
//! lines starting with `#` and blank lines are ignored. The path after
//! `--machine` or `--sysfs` is relative to the repository root; the test
//! passes it as an absolute path and strips the repository root back out of
//! stdout, so the goldens spell machine files as `examples/machines/…` no
//! matter where the repository lives.
//!
//! When an output change is intended, regenerate the goldens with
//! `UNIDMA_BLESS=1 cargo test -p unidma-tests --test golden_cli`, review the
//! diff, and say in the commit message that the goldens were regenerated and
//! why. Never bless to make a refactor pass.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf, MAIN_SEPARATOR};

/// Flags whose value is a path relative to the repository root.
const PATH_FLAGS: &[&str] = &["--machine", "--sysfs"];

/// The environment variable that switches the test to regenerating goldens.
const BLESS_VAR: &str = "UNIDMA_BLESS";

/// One line of the manifest.
struct Case {
    /// The golden file, relative to the golden directory.
    golden: String,
    /// The CLI arguments (without the program name), paths as written.
    args: Vec<String>,
}

/// The golden directory: `tests/golden`.
fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// The repository root (the parent of the tests crate).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate has a parent directory")
        .to_path_buf()
}

/// Parses the manifest; panics on a malformed line or a duplicate case.
fn parse_manifest(text: &str) -> Vec<Case> {
    let mut seen = BTreeSet::new();
    let mut cases = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (golden, args) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("cases.txt:{lineno}: no tab between golden and args"));
        let args: Vec<String> = args.split(' ').map(str::to_owned).collect();
        assert!(
            !golden.is_empty() && args.iter().all(|a| !a.is_empty()),
            "cases.txt:{lineno}: empty golden path or argument (args take single spaces)"
        );
        assert!(
            seen.insert(golden.to_owned()),
            "cases.txt:{lineno}: duplicate case {golden}"
        );
        cases.push(Case {
            golden: golden.to_owned(),
            args,
        });
    }
    assert!(!cases.is_empty(), "cases.txt lists no case");
    cases
}

/// The arguments with every path after a [`PATH_FLAGS`] flag made absolute.
fn resolve_paths(args: &[String], root: &Path) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut path_next = false;
    for arg in args {
        if path_next {
            out.push(root.join(arg).to_string_lossy().into_owned());
        } else {
            out.push(arg.clone());
        }
        path_next = PATH_FLAGS.contains(&arg.as_str());
    }
    out
}

/// Stdout with the repository root prefix removed (as printed in text and as
/// escaped in JSON), so absolute machine paths read as relative ones.
fn strip_root(stdout: &str, root: &Path) -> String {
    let prefix = format!("{}{MAIN_SEPARATOR}", root.display());
    let json_prefix = serde_json::to_string(&prefix).expect("a string serialises");
    let json_prefix = &json_prefix[1..json_prefix.len() - 1];
    stdout.replace(json_prefix, "").replace(&prefix, "")
}

/// The golden rendering of one run.
fn render(code: i32, stdout: &str) -> String {
    format!("exit: {code}\n{stdout}")
}

/// Where `actual` first departs from `expected`: the 1-based line number and
/// both lines.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut exp = expected.split_inclusive('\n');
    let mut act = actual.split_inclusive('\n');
    let mut lineno = 1;
    loop {
        match (exp.next(), act.next()) {
            (Some(e), Some(a)) if e == a => lineno += 1,
            (e, a) => {
                let show = |l: Option<&str>| {
                    l.map_or_else(|| "<end of file>".into(), |l| format!("{l:?}"))
                };
                return format!(
                    "line {lineno}:\n    expected {}\n    actual   {}",
                    show(e),
                    show(a)
                );
            }
        }
    }
}

/// Every `.out` file under `dir`, relative to `dir` with `/` separators.
fn golden_files(dir: &Path, rel: &str, found: &mut BTreeSet<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.expect("readable golden directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            golden_files(&path, &rel, found);
        } else if rel.ends_with(".out") {
            found.insert(rel);
        }
    }
}

/// Runs every manifest case and compares it with its golden file (or writes
/// the golden file when `UNIDMA_BLESS=1`). One test on purpose: the cases
/// share the process, and one report lists every mismatch.
#[test]
fn cli_output_matches_goldens() {
    let dir = golden_dir();
    let root = repo_root();
    let manifest = fs::read_to_string(dir.join("cases.txt"))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.join("cases.txt").display()));
    let cases = parse_manifest(&manifest);
    let bless = std::env::var(BLESS_VAR).is_ok_and(|v| v == "1");

    let mut failures = Vec::new();
    for case in &cases {
        let args = resolve_paths(&case.args, &root);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = unidma_tests::run_cli(&argv);
        let actual = render(code, &strip_root(&stdout, &root));
        let path = dir.join(&case.golden);
        if bless {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
            }
            fs::write(&path, &actual)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            continue;
        }
        let expected = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                failures.push(format!("{}: cannot read golden: {e}", case.golden));
                continue;
            }
        };
        if expected != actual {
            let mut msg = format!(
                "{} (unidma {}): {}",
                case.golden,
                case.args.join(" "),
                first_difference(&expected, &actual)
            );
            if let Some(first) = stderr.lines().next() {
                msg.push_str(&format!("\n    stderr   {first:?}"));
            }
            failures.push(msg);
        }
    }

    let listed: BTreeSet<String> = cases.into_iter().map(|c| c.golden).collect();
    let mut on_disk = BTreeSet::new();
    golden_files(&dir, "", &mut on_disk);
    for stale in on_disk.difference(&listed) {
        failures.push(format!(
            "{stale}: golden file not listed in cases.txt (delete it or list it)"
        ));
    }

    if bless {
        eprintln!(
            "{BLESS_VAR}=1: wrote {} golden files under {}",
            listed.len(),
            dir.display()
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        return;
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es) over {} cases (if the change is intended, rerun with \
         {BLESS_VAR}=1 and say so in the commit):\n{}",
        failures.len(),
        listed.len(),
        failures.join("\n")
    );
}
