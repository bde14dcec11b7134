//! `chat-consumer`: the CONNMIX chat tutorial's backend.
//!
//! Run `chat-consumer --help`. With no subcommand it runs the consumer (`run`).

use std::process::ExitCode;

use clap::FromArgMatches as _;

mod cli;

/// mimalloc rather than the system allocator: glibc keeps a freed argon2 block (19 MiB by
/// default) in each hashing thread's arena for good, so after a few logins the process held
/// parallelism x argon2 memory forever; mimalloc returns blocks that large to the system when
/// they are freed. It is also cheaper per allocation on the event path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The one crypto provider linked: sqlx's TLS and the embedded engine's HTTP client use the
    // process's provider, and none is installed otherwise. Fails only if one already is.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args =
        cli::Cli::from_arg_matches(&cli::command().get_matches()).unwrap_or_else(|err| err.exit());
    let log_format = args.log_format();
    cli::init_logging(log_format, args.is_admin());
    let runtime = match args.runtime() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let spawned = args.spawned();
    let outcome = runtime.block_on(async move {
        if spawned {
            tokio::spawn(cli::execute(args))
                .await
                .unwrap_or_else(|err| Err(anyhow::anyhow!("the consumer task failed: {err}")))
        } else {
            cli::execute(args).await
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            cli::report_error(log_format, &err);
            if err.is::<cli::DrainIncomplete>() {
                ExitCode::from(cli::DrainIncomplete::EXIT_CODE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
