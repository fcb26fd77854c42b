//! Hands the user-program linker script in `targets/` to the linker.

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = manifest.join("../../targets/user.ld");
    let script = script.canonicalize().expect("targets/user.ld exists");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rerun-if-changed={}", script.display());
}
