//! Hands the shared kernel linker script in `targets/` to the linker (the build
//! script of both kernels: `qemu/minimal-kernel` names this file).

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = manifest.join("../../targets/kernel.ld");
    let script = script.canonicalize().expect("targets/kernel.ld exists");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    println!("cargo:rerun-if-changed={}", script.display());
}
