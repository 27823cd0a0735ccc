//! The bridge simulator (`jvb-sim`, a test tool) as a child process of a test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use super::prosody::Prosody;

/// The simulator's brewery room.
pub fn brewery(p: &Prosody) -> String {
    format!("JvbBrewery@internal.auth.{}", p.domain)
}

pub struct Sim {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Sim {
    /// Start `jvb-sim` as `nick`, recording into `record`; waits for its joined line.
    pub fn start(p: &Prosody, nick: &str, record: &Path) -> Sim {
        Sim::start_with(p, nick, record, &[])
    }

    /// Start `jvb-sim` as `nick` with extra `args`, recording into `record`; waits for its joined line.
    pub fn start_with(p: &Prosody, nick: &str, record: &Path, args: &[&str]) -> Sim {
        let log = std::fs::File::create(p.dir.join(format!("jvb-sim-{}.log", nick))).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_jvb-sim"))
            .args(["--host", p.host(), "--port", &p.c2s_port.to_string()])
            .args(["--domain", &format!("auth.{}", p.domain), "--user", "jvb"])
            .args(["--brewery", &brewery(p), "--nick", nick, "--ws-domain", &p.domain])
            .arg("--tls_ca_file")
            .arg(&p.ca_file)
            .arg("--record")
            .arg(record)
            .args(args)
            .env("JVB_PASSWORD", &p.jvb_password)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("jvb-sim starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        let sim = Sim { child, stdin, lines: rx };
        let want = format!("jvb-sim: joined {}/{}", brewery(p), nick);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sim.lines.recv_timeout(left) {
                Ok(l) if l == want => return sim,
                Ok(_) => {}
                Err(_) => panic!("jvb-sim did not print {:?}; see {}", want, p.dir.display()),
            }
        }
    }

    /// Send a control command on stdin.
    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{}", line).unwrap();
        stdin.flush().unwrap();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "jvb-sim did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

