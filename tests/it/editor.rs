//! A real editor: Neovim's built-in LSP client on `seg lsp`, headless.

use std::process::Command;

fn nvim_present() -> bool {
    Command::new("nvim")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn neovim_shows_diagnostics_renames_and_completes() {
    if !nvim_present() {
        assert!(
            std::env::var_os("SEG_REQUIRE_ENGINES").is_none(),
            "nvim is not installed (.ci/run installs the Debian package neovim)"
        );
        eprintln!("skipped: nvim is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("s.seg");
    std::fs::write(
        &script,
        "segment engaged = opened.email exists;\nsegment target = engaged and clik.email exists;\n",
    )
    .expect("write");
    let out = dir.path().join("out.txt");
    let lua = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/nvim_lsp.lua");
    let status = Command::new("nvim")
        .args(["--headless", "--clean", "-c", &format!("luafile {lua}")])
        .env("SEG_BIN", env!("CARGO_BIN_EXE_seg"))
        .env("SEG_SCRIPT", &script)
        .env("SEG_OUT", &out)
        .current_dir(dir.path())
        .status()
        .expect("run nvim");
    assert!(status.success());
    let got = std::fs::read_to_string(&out).expect("the editor wrote what it got");
    let lines: Vec<&str> = got.lines().collect();
    assert!(lines.contains(&"diagnostic E010 1:29"), "{got}");
    assert!(lines.contains(&"rename 0:8 active"), "{got}");
    assert!(lines.contains(&"rename 1:17 active"), "{got}");
    assert!(lines.contains(&"completion click.email"), "{got}");
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("completion "))
            .all(|l| l.starts_with("completion click.")),
        "{got}"
    );
}
