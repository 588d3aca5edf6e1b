//! A per-test temporary directory, removed when it goes out of scope.
//!
//! Tests that hand files to the CLI or the sysfs readers (machine files,
//! `pci.ids`, fake sysfs trees) need real paths. Each [`TempDir`] is a fresh directory named after
//! the process and a process-wide counter, so tests running on parallel
//! threads of one test binary never share or delete each other's files, and
//! nothing is left in the system temporary directory once the test ends,
//! passed or panicked (the drop runs while unwinding).
//!
//! A copy of `tests/src/temp_dir.rs` (the `unidma-tests` crate): dma-sim's
//! tests cannot depend on that crate, which depends on dma-sim. A test
//! there checks that the code of both stays the same.
#![allow(dead_code)] // each test binary uses only part of it

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
