//! `anxin`: one binary for the whole system. This package only composes:
//! each subcommand hands its settings to the crate that owns the work.

mod admin;
mod bench;
mod cli;
mod demo;
mod identities;
mod output;
mod run;
mod settings;
mod simulate;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    // A benchmark prints figures; a log line per alert would drown them.
    let default_filter = match cli.command {
        cli::Command::Bench(_) => "warn,mqtt5=error",
        _ => "warn,anxin=info,anxin_gateway=info,mqtt5=error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ANXIN_LOG").unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result =
        tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|runtime| runtime.block_on(dispatch(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: cli::Cli) -> anyhow::Result<()> {
    use cli::Command;
    let file = settings::FileSettings::load(cli.storage.config.as_deref())?;
    match cli.command {
        Command::Serve(args) => run::serve(&cli.storage, file, args).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Gateway(args) => run::gateway(&cli.storage, file, args).await,
        Command::Console(args) => run::console(&cli.storage, file, args).await,
        Command::Devices(command) => admin::devices(&cli.storage, file, command).await,
        Command::Bridges(command) => identities::bridges(&cli.storage, file, command).await,
        Command::Consumers(command) => identities::consumers(&cli.storage, file, command).await,
        Command::Gateways(command) => identities::gateways(&cli.storage, file, command).await,
        Command::Elders(command) => admin::elders(&cli.storage, file, command).await,
        Command::Events(command) => admin::events(&cli.storage, file, command).await,
        Command::Alerts(command) => admin::alerts(&cli.storage, file, command).await,
        Command::Visits(command) => admin::visits(&cli.storage, file, command).await,
        Command::Ledger(command) => admin::ledger(&cli.storage, file, command).await,
        Command::Watch(command) => admin::watch(&cli.storage, file, command).await,
        Command::Users(command) => admin::users(&cli.storage, file, command).await,
        Command::Tokens(command) => admin::tokens(&cli.storage, file, command).await,
        Command::Bench(cli::BenchCommand::Ingest(args)) => bench::ingest::ingest(args).await,
        Command::Bench(cli::BenchCommand::Alerts(args)) => bench::alerts::alerts(args).await,
        Command::Bench(cli::BenchCommand::Console(args)) => bench::console::console(args).await,
        Command::Bench(cli::BenchCommand::Ledger(args)) => bench::ledger::ledger(args).await,
        Command::Simulate(args) => simulate::simulate(&cli.storage, file, args).await,
    }
}
