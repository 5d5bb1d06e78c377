//! `anxin`: one binary for the whole system. This package only composes:
//! each subcommand hands its settings to the crate that owns the work. It is
//! a library too, so tests can build the app in their own process
//! ([`run::App::build`]).

pub mod admin;
pub mod cli;
pub mod demo;
pub mod identities;
pub mod output;
pub mod run;
pub mod settings;
pub mod simulate;
pub mod systemd;

/// Runs one parsed command line.
pub async fn dispatch(cli: cli::Cli) -> anyhow::Result<()> {
    use cli::Command;
    let file = settings::Layer::load(cli.storage.config.as_deref())?;
    let settings = settings::Settings::of(&cli, file)?;
    let settings = &settings;
    match cli.command {
        Command::Serve(_) => run::serve(settings).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Gateway(_) => run::gateway(settings).await,
        Command::Edge(_) => run::edge(settings).await,
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
        Command::Contacts(command) => admin::contacts(settings, command).await,
        Command::Duty(command) => admin::duty(settings, command).await,
        Command::Users(command) => admin::users(settings, command).await,
        Command::Tokens(command) => admin::tokens(settings, command).await,
        Command::Audit(command) => admin::audit(settings, command).await,
        Command::Backup { file, into, keep } => admin::backup(settings, file, into, keep).await,
        Command::Restore { file, replace } => admin::restore(settings, &file, replace).await,
        Command::Retention => admin::retention(settings).await,
        Command::Bench(command) => {
            // A benchmark's processes (`bench cluster`) end with it, even
            // when it ends early at a closed pipe (`anxin bench cluster | head`).
            anxin_bench::print_lines_with(|line| {
                if let Err(error) = output::try_line(line) {
                    anxin_bench::stop_children();
                    output::end_on(&error);
                }
            });
            // The benchmarks open thousands of connections (`bench cluster --connections`).
            run::raise_open_files_limit();
            match command {
                cli::BenchCommand::Ingest(args) => anxin_bench::ingest::ingest(args).await,
                cli::BenchCommand::Alerts(args) => anxin_bench::alerts::alerts(args).await,
                cli::BenchCommand::Console(args) => anxin_bench::console::console(args).await,
                cli::BenchCommand::Ledger(args) => anxin_bench::ledger::ledger(args).await,
                cli::BenchCommand::Responders(args) => anxin_bench::responders::responders(args).await,
                cli::BenchCommand::Cluster(args) => anxin_bench::cluster::cluster(args).await,
            }
        }
        Command::Simulate(args) => simulate::simulate(settings, args).await,
    }
}
