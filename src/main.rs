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
    let file = settings::Layer::load(cli.storage.config.as_deref())?;
    let settings = settings::Settings::of(&cli, file)?;
    let settings = &settings;
    match cli.command {
        Command::Serve(_) => run::serve(settings).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Gateway(_) => run::gateway(settings).await,
        Command::Console(_) => run::console(settings).await,
        Command::Devices(command) => admin::devices(settings, command).await,
        Command::Bridges(command) => identities::bridges(settings, command).await,
        Command::Consumers(command) => identities::consumers(settings, command).await,
        Command::Gateways(command) => identities::gateways(settings, command).await,
        Command::Elders(command) => admin::elders(settings, command).await,
        Command::Events(command) => admin::events(settings, command).await,
        Command::Alerts(command) => admin::alerts(settings, command).await,
        Command::Visits(command) => admin::visits(settings, command).await,
        Command::Ledger(command) => admin::ledger(settings, command).await,
        Command::Watch(command) => admin::watch(settings, command).await,
        Command::Users(command) => admin::users(settings, command).await,
        Command::Tokens(command) => admin::tokens(settings, command).await,
        Command::Bench(cli::BenchCommand::Ingest(args)) => bench::ingest::ingest(args).await,
        Command::Bench(cli::BenchCommand::Alerts(args)) => bench::alerts::alerts(args).await,
        Command::Bench(cli::BenchCommand::Console(args)) => bench::console::console(args).await,
        Command::Bench(cli::BenchCommand::Ledger(args)) => bench::ledger::ledger(args).await,
        Command::Simulate(args) => simulate::simulate(settings, args).await,
    }
}
