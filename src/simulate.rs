//! `anxin simulate`: hands the flags to the simulator crate.

use anxin_simulator::{SimulateOptions, parse_broker_url};

use crate::cli::SimulateArgs;
use crate::output::out;

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
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
        record_acks: false,
    };
    options.validate()?;
    tracing::info!(homes = options.homes, broker = %args.broker, "simulating");
    let report = anxin_simulator::run(options).await?;
    out!("{report}");
    Ok(())
}
