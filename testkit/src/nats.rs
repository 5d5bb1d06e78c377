//! A real NATS JetStream cluster on loopback for the province's tests
//! (issue 20): Debian's `nats-server`, N nodes with their own ports and
//! folders, routes between all of them, stopped when the handle drops.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{find_program, free_port, private_folder, wait_until};

/// One node of a [`NatsCluster`].
#[derive(Debug)]
struct Node {
    name: String,
    client: SocketAddr,
    monitor: SocketAddr,
    config: PathBuf,
    process: Option<Child>,
}

/// A JetStream cluster of real `nats-server` processes.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
    folder: PathBuf,
}

impl NatsCluster {
    /// Starts `size` nodes and waits until they have elected a JetStream
    /// meta leader (so streams can be created at once). A cluster that does
    /// not form (a port picked here taken meanwhile by another test's
    /// process, seen under the whole suite) is stopped and started again on
    /// fresh ports, up to three times.
    pub fn start(size: usize) -> NatsCluster {
        let mut failures = Vec::new();
        for _attempt in 0..3 {
            match NatsCluster::try_start(size) {
                Ok(cluster) => return cluster,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("the NATS cluster did not form three times:\n{}", failures.join("\n"));
    }

    fn try_start(size: usize) -> Result<NatsCluster, String> {
        let folder = private_folder("nats");
        let ports: Vec<(u16, u16, u16)> = (0..size).map(|_| (free_port(), free_port(), free_port())).collect();
        let routes: Vec<String> = ports.iter().map(|(_, route, _)| format!("nats-route://127.0.0.1:{route}")).collect();
        let mut nodes = Vec::new();
        for (index, (client, route, monitor)) in ports.into_iter().enumerate() {
            let name = format!("n{}", index + 1);
            let store = folder.join(&name);
            let config = folder.join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                     jetstream {{ store_dir: \"{}\", max_file_store: 1G, max_memory_store: 64M }}\n\
                     cluster {{ name: anxin-test, listen: 127.0.0.1:{route}, routes: [{}] }}\n\
                     log_file: \"{}\"\n",
                    store.display(),
                    routes.join(", "),
                    folder.join(format!("{name}.log")).display()
                ),
            )
            .expect("write the node's settings");
            let mut node = Node {
                name,
                client: SocketAddr::from(([127, 0, 0, 1], client)),
                monitor: SocketAddr::from(([127, 0, 0, 1], monitor)),
                config,
                process: None,
            };
            node.spawn();
            nodes.push(node);
        }
        let cluster = NatsCluster { nodes, folder };
        let formed =
            cluster.nodes.iter().all(|node| {
                let address = node.client;
                wait_until(Duration::from_secs(20), || TcpStream::connect(address).is_ok())
            }) && wait_until(Duration::from_secs(30), || cluster.nodes.iter().all(|node| node.jetstream_ready()));
        if formed {
            return Ok(cluster);
        }
        // The nodes' own words, before the folder goes with the cluster.
        let logs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| {
                let log =
                    std::fs::read_to_string(cluster.folder.join(format!("{}.log", node.name))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                format!("{}: {}", node.name, tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
            })
            .collect();
        Err(format!("no JetStream leader within 30 s; {}", logs.join("; ")))
    }

    /// `nats://HOST:PORT` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| format!("nats://{}", node.client)).collect()
    }

    /// Kills node `index` with SIGKILL: no goodbye to its peers, nothing flushed.
    pub fn kill(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        if let Some(mut process) = node.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts a killed node again with its folder as it was left.
    pub fn restart(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        node.spawn();
        let address = node.client;
        assert!(wait_until(Duration::from_secs(20), || TcpStream::connect(address).is_ok()), "{} is back", node.name);
    }
}

impl Node {
    fn spawn(&mut self) {
        let server = find_program("nats-server").unwrap_or_else(|| {
            panic!(
                "nats-server is not installed; run the test command from the README (scripts/test), which installs it"
            )
        });
        self.process = Some(
            Command::new(server)
                .arg("-c")
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nats-server"),
        );
    }

    /// `/healthz?js-enabled-only=true` says ok once JetStream is up; the
    /// meta leader shows in `/jsz`.
    fn jetstream_ready(&self) -> bool {
        let page = get(self.monitor, "/jsz");
        page.contains("\"leader\"") && !page.contains("\"leader\": \"\"")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// A plain HTTP GET of the monitoring port.
fn get(address: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page);
    page
}
