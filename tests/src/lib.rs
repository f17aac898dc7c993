//! Helpers for the end-to-end tests: where the golden vector lives.

use std::path::PathBuf;

/// The folder of shared test data (`tests/golden`).
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}
