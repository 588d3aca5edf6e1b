//! A per-test temporary directory, removed when it goes out of scope.
//!
//! Tests that hand files to the CLI or the sysfs readers (machine files,
//! `pci.ids`, fake sysfs trees) need real paths. Each [`TempDir`] is a fresh directory named after
//! the process and a process-wide counter, so tests running on parallel
//! threads of one test binary never share or delete each other's files, and
//! nothing is left in the system temporary directory once the test ends,
//! passed or panicked (the drop runs while unwinding).
//!
//! dma-sim's tests cannot depend on this crate (it depends on dma-sim), so
//! `dma-api/sim/tests/common/temp_dir.rs` is a copy of this file (a test
//! below checks that their code stays the same).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Instances created so far in this process: the unique part of a name.
static CREATED: AtomicU64 = AtomicU64::new(0);

/// A fresh directory `unidma-TAG-PID-N` under the system temporary
/// directory; removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory (its path canonical, so symlinks
    /// made below it resolve to paths that start with it). A leftover of a
    /// dead process that had the same pid is removed first. Panics if the
    /// directory cannot be made: the test's environment is broken.
    pub fn new(tag: &str) -> Self {
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("unidma-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let path = fs::canonicalize(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` (a relative path; missing parent
    /// directories are made) and returns the file's path. Panics on an I/O
    /// error.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    /// Removes the directory; an error is ignored (a drop must not panic,
    /// least of all while a failing test unwinds).
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::TempDir;
    use std::collections::BTreeSet;

    /// Instances made at the same time on several threads are distinct
    /// directories, each holding only its own files; dropping one leaves
    /// the others whole, and every one is gone after its drop.
    #[test]
    fn parallel_instances_are_distinct_and_removed_on_drop() {
        let dirs: Vec<TempDir> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    s.spawn(move || {
                        let d = TempDir::new("selftest");
                        let f = d.write("a/b.txt", format!("thread {i}"));
                        assert_eq!(f, d.path().join("a/b.txt"));
                        d
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let paths: BTreeSet<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        assert_eq!(paths.len(), 8, "{paths:?}");
        let mut dirs = dirs;
        let first = dirs.remove(0);
        let gone = first.path().to_path_buf();
        drop(first);
        assert!(!gone.exists(), "{}", gone.display());
        for d in &dirs {
            let text = std::fs::read_to_string(d.path().join("a/b.txt")).unwrap();
            assert!(text.starts_with("thread "), "{text}");
        }
        let texts: BTreeSet<_> = dirs
            .iter()
            .map(|d| std::fs::read_to_string(d.path().join("a/b.txt")).unwrap())
            .collect();
        assert_eq!(
            texts.len(),
            7,
            "two instances shared a directory: {texts:?}"
        );
        let rest: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        drop(dirs);
        for p in rest {
            assert!(!p.exists(), "{}", p.display());
        }
    }

    /// A directory already removed (by the test itself) does not make the
    /// drop panic.
    #[test]
    fn drop_after_the_directory_is_gone_does_not_panic() {
        let d = TempDir::new("selftest-gone");
        std::fs::remove_dir_all(d.path()).unwrap();
        drop(d);
    }

    /// dma-sim's copy (`dma-api/sim/tests/common/temp_dir.rs`) has the
    /// same code as this file: module docs, its lint allowance and these
    /// tests aside.
    #[test]
    fn dma_sim_copy_has_the_same_code() {
        fn code(text: &str) -> String {
            let from = text.find("use std::fs;").expect("no `use std::fs;`");
            let to = text.find("\n#[cfg(test)]").unwrap_or(text.len());
            text[from..to].trim_end().to_string()
        }
        let copy = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dma-api/sim/tests/common/temp_dir.rs"
        );
        let copy = std::fs::read_to_string(copy).unwrap_or_else(|e| panic!("{copy}: {e}"));
        assert_eq!(code(&copy), code(include_str!("temp_dir.rs")));
    }
}
