//! The `seg` command line: a thin front end over the library.

mod cli;

// DataFusion allocates and frees many large buffers per batch; mimalloc
// reuses them instead of faulting in fresh pages from the system allocator.
// Built without transparent huge pages (`no_thp`): zeroing fresh 2 MiB pages
// cost more than the TLB saved (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
