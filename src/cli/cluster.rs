//! `seg scheduler` and `seg executor`: Ballista's servers with Seg's codecs
//! (see `seglang::engine::cluster` and docs/cluster.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use seglang::engine::cluster::{self, ExecutorOptions};

use super::{fail, EXIT_OK};

/// How long an executor waits for its scheduler to answer at start.
const SCHEDULER_WAIT: Duration = Duration::from_secs(30);

fn serve(what: &str, server: impl std::future::Future<Output = Result<(), String>>) -> u8 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    match rt.block_on(server) {
        Ok(()) => {
            eprintln!("seg {what}: stopped");
            EXIT_OK
        }
        Err(e) => fail(e),
    }
}

pub fn scheduler(bind: SocketAddr) -> u8 {
    serve("scheduler", async move {
        eprintln!(
            "seg scheduler: listening on {bind} (clients: seg run --cluster df://HOST:{})",
            bind.port()
        );
        cluster::serve_scheduler(bind).await
    })
}

pub struct ExecutorArgs {
    pub scheduler: String,
    pub bind: SocketAddr,
    pub advertise: Option<String>,
    pub work_dir: Option<PathBuf>,
    pub concurrency: Option<usize>,
    pub memory_limit: Option<String>,
}

pub fn executor(args: ExecutorArgs) -> u8 {
    let url = if args.scheduler.starts_with("df://") {
        args.scheduler.clone()
    } else {
        format!("df://{}", args.scheduler)
    };
    let scheduler = match cluster::scheduler_address(&url) {
        Ok(s) => s,
        Err(e) => return fail(format!("--scheduler: {e}")),
    };
    let memory_limit = match args
        .memory_limit
        .as_deref()
        .map(seglang::engine::parse_size)
    {
        None => None,
        Some(Ok(n)) => Some(n as u64),
        Some(Err(e)) => return fail(format!("--memory-limit: {e}")),
    };
    if args.concurrency == Some(0) {
        return fail("--concurrency: at least 1 task at once");
    }
    let options = ExecutorOptions {
        scheduler,
        bind: args.bind,
        advertise: args.advertise,
        work_dir: args.work_dir,
        concurrency: args.concurrency,
        memory_limit,
    };
    serve("executor", async move {
        eprintln!(
            "seg executor: serving on {} (Arrow Flight) and port {} (gRPC), scheduler {url}",
            options.bind,
            options.bind.port().saturating_add(1)
        );
        cluster::serve_executor(options, SCHEDULER_WAIT).await
    })
}
