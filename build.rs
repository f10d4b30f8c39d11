//! Link-time settings of the `seg` binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Compact relative relocations (DT_RELR, glibc 2.36+): the dynamic
        // loader applies the executable's ~160 000 relative relocations in
        // a fraction of the time, and `seg` starts a query that much sooner.
        println!("cargo:rustc-link-arg-bin=seg=-Wl,-z,pack-relative-relocs");
    }
}
