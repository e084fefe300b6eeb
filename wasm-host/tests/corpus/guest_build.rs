//! Builds the guest: the C API for `wasm32-wasip1`, by a nested cargo with
//! a target directory of its own (sharing the outer one would wait forever
//! on the lock the outer cargo holds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The path of `cormorant.wasm`, built once per test binary.
pub(crate) fn guest_wasm() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-guest");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args(["build", "-p", "cormorant-capi", "--release"])
            .args(["--target", "wasm32-wasip1", "--target-dir"])
            .arg(&target_dir)
            .status()
            .expect("running cargo");
        assert!(
            status.success(),
            "building the guest failed (is the target installed? rustup target add wasm32-wasip1)"
        );
        target_dir.join("wasm32-wasip1/release/cormorant.wasm")
    })
}
