//! Generates Rust bindings for the shared uapi header (the ABI is defined
//! once, in `kernel-module/include/uapi/linux/dirsync.h`).

use std::env;
use std::path::PathBuf;

fn main() {
    let header = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("../kernel-module/include/uapi/linux/dirsync.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .allowlist_type("dirsync_info")
        .allowlist_type("dirsync_dirent")
        .allowlist_var("DIRSYNC_.*")
        .derive_default(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen failed on the dirsync uapi header (is libclang-dev installed?)");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("dirsync_uapi.rs");
    bindings
        .write_to_file(out)
        .expect("cannot write the generated bindings");
}
