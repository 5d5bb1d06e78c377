//! The command line: subcommands, their flags and `--help` texts.

use std::time::Duration;

use anxin_simulator::{Scenario, SimulateOptions, parse_broker_url};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "anxin",
    version,
    about = "Anxin (安心): remote monitoring and visit records for elders in special difficulty",
    long_about = "Anxin watches over elders who live alone: sensor nodes in their homes report activity, \
                  doors, smoke, the help button and temperature over MQTT; Anxin turns that into alerts \
                  for on-call staff and into remote check-ins that count towards the monthly visit rate.\n\n\
                  Today this build has the wire contract, the sensor-node firmware and the home simulator; \
                  the gateway (`anxin serve`) and the console arrive next."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate homes with sensor nodes publishing to an MQTT broker (demo driver and load generator)
    #[command(long_about = "Runs N simulated homes, each the sensor-node firmware's own logic with a daily routine \
        (asleep at night, active by day, the door now and then), one MQTT connection per home. \
        Scripted scenarios make one home do something on demand.\n\n\
        Example: anxin simulate --homes 50 --speed 60 --duration 2m --scenario smoke:3@10m --scenario silent:7")]
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// MQTT broker to publish to
    #[arg(long, env = "ANXIN_BROKER", default_value = "mqtt://127.0.0.1:1883", value_name = "mqtt://HOST:PORT")]
    broker: String,
    /// Number of homes
    #[arg(long, default_value_t = 10)]
    homes: usize,
    /// How long to run, in real time (e.g. 90s, 10m, 1h)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Simulated seconds per real second (60: an hour passes in a minute)
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Summary (heartbeat) interval of each node, in simulated time
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    summary_interval: Duration,
    /// Simulated hour of day at which the run starts (0-23)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..24))]
    start_hour: u32,
    /// A scripted scenario, KIND:HOME[@TIME], repeatable. KIND is smoke, help, silent (no activity),
    /// door-night (door left open at night), cold (room at 8 °C) or offline (the node dies);
    /// TIME is simulated time since the start, e.g. smoke:3@10m
    #[arg(long = "scenario", value_name = "KIND:HOME[@TIME]")]
    scenarios: Vec<Scenario>,
    /// Device ids are PREFIX-00001, PREFIX-00002, …
    #[arg(long, default_value = "sim")]
    id_prefix: String,
    /// Seed for the homes' routines: the same seed gives the same homes
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Allow a broker that is not on this machine (refused by default)
    #[arg(long)]
    allow_remote: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    anxin_simulator::scenario::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration; use a number and s, m or h, e.g. 90s, 10m, 2h"))
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Simulate(args) => simulate(args),
    }
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let (broker_host, broker_port) = parse_broker_url(&args.broker)?;
    let options = SimulateOptions {
        broker_host,
        broker_port,
        homes: args.homes,
        duration: args.duration,
        speed: args.speed,
        summary_interval: args.summary_interval,
        start_hour: args.start_hour,
        scenarios: args.scenarios,
        id_prefix: args.id_prefix,
        seed: args.seed,
        allow_remote: args.allow_remote,
    };
    options.validate()?;
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    tracing::info!(homes = options.homes, broker = %args.broker, "simulating");
    let report = runtime.block_on(anxin_simulator::run(options))?;
    println!("{report}");
    Ok(())
}
