//! `anxin simulate`: hands the flags to the simulator crate.

use anxin_simulator::{SimulateOptions, parse_broker_url};

use crate::cli::SimulateArgs;
use crate::output::out;
use crate::settings::Settings;

pub async fn simulate(settings: &Settings, args: SimulateArgs) -> anyhow::Result<()> {
    let (broker_host, broker_port, tls) = parse_broker_url(&args.broker)?;
    let tls = match (tls, &args.broker_ca) {
        (true, ca_file) => {
            let tls = anxin_gateway::broker::external::Tls { ca_file: ca_file.clone() };
            Some(std::sync::Arc::new(anxin_gateway::broker::external::ExternalBroker::tls_config(&tls)?))
        }
        (false, Some(_)) => anyhow::bail!("--broker-ca is for an mqtts:// broker; {} is plain MQTT", args.broker),
        (false, None) => None,
    };
    let mut options = SimulateOptions {
        broker_host,
        broker_port,
        homes: args.homes,
        duration: args.duration,
        drain: args.drain,
        speed: args.speed,
        summary_interval: args.summary_interval,
        start_hour: args.start_hour,
        scenarios: args.scenarios,
        id_prefix: args.id_prefix,
        seed: args.seed,
        allow_remote: args.allow_remote,
        record_acks: false,
        credentials: Default::default(),
        tls,
    };
    options.validate()?;
    let device_ids: Vec<String> = (1..=options.homes).map(|index| options.device_id(index)).collect();
    options.credentials = match &args.credentials {
        Some(path) => {
            let credentials = crate::identities::read_credentials(path)?;
            let missing: Vec<&String> = device_ids.iter().filter(|id| !credentials.contains_key(*id)).collect();
            if let Some(first) = missing.first() {
                anyhow::bail!(
                    "{} has no secret for {first} ({} of the simulated devices missing)",
                    path.display(),
                    missing.len()
                );
            }
            credentials.into_iter().collect()
        }
        None => {
            // The simulator's own devices, provisioned afresh for this run.
            let store = crate::run::open_store(settings).await?;
            let credentials = crate::identities::provision_simulated(&store, &device_ids).await?;
            store.close().await;
            out!(
                "provisioned {} devices for this run, {} … {}, each with a fresh secret",
                device_ids.len(),
                device_ids.first().map_or("", String::as_str),
                device_ids.last().map_or("", String::as_str)
            );
            credentials.into_iter().collect()
        }
    };
    tracing::info!(homes = options.homes, broker = %args.broker, "simulating");
    let report = anxin_simulator::run(options).await?;
    out!("{report}");
    Ok(())
}
