//! Seg's integration tests, one module per area, linked into one test binary:
//! every test binary links all of DataFusion, so one binary instead of eleven
//! keeps the build small on disk and quick to link.
//!
//! Run one area with `cargo test --test it cli::` (a name filter), one test
//! with its full name.

mod common;

mod bench_smoke;
mod cli;
mod cluster;
mod diagnostics;
mod docs;
mod editor;
mod fmt;
mod fuzz;
mod gen;
mod lsp;
mod parse;
mod python;
mod repl;
mod semantics;
mod sql;
mod sql_diff;
mod store;
mod writers;
