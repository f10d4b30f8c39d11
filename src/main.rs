//! The `seg` command line: a thin front end over the library.

mod cli;

// DataFusion allocates and frees many large buffers per batch; mimalloc
// reuses them instead of faulting in fresh pages from the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
