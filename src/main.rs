//! `anxin`: the command line; the work is the library's ([`anxin::dispatch`]).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = anxin::cli::Cli::parse();
    // A benchmark prints figures; a log line per alert would drown them.
    let default_filter = match cli.command {
        anxin::cli::Command::Bench(_) => "warn,mqtt5=error",
        _ => "warn,anxin=info,anxin_gateway=info,mqtt5=error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ANXIN_LOG").unwrap_or_else(|_| default_filter.into());
    // Colours only for a terminal: journald and files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match cli.log_format {
        anxin::cli::LogFormat::Text => logs.init(),
        anxin::cli::LogFormat::Json => logs.json().init(),
    }
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(anxin::dispatch(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
