//! Docs stay in step with the code.

#[test]
fn diagnostics_md_documents_every_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/diagnostics.md"))
        .expect("read");
    for code in seglang::Code::ALL {
        assert!(
            doc.contains(&format!("| {} |", code.as_str())),
            "docs/diagnostics.md lacks {code}"
        );
    }
}

#[test]
fn readme_commands_name_files_that_exist() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("read");
    assert!(readme.contains("cargo test"));
    for path in ["examples/retargeting.seg", "examples/data"] {
        assert!(readme.contains(path));
        assert!(std::path::Path::new(root).join(path).exists(), "{path}");
    }
}
