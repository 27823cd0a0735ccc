//! The Jibri and Jigasi simulators (`jibri-sim`, `jigasi-sim`, test tools) as child
//! processes of a test, with their stdout lines (joined notices and `--trace` stanzas).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::prosody::Prosody;

/// A running simulator.
pub struct Gateway {
    pub child: Child,
    pub name: &'static str,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    /// `jibri-sim` as `nick` in `JibriBrewery@internal.auth.<domain>` with `args`; waits until it joined.
    pub fn jibri(p: &Prosody, nick: &str, args: &[&str]) -> Gateway {
        let brewery = format!("JibriBrewery@internal.auth.{}", p.domain);
        let auth = format!("auth.{}", p.domain);
        Gateway::start(p, "jibri-sim", env!("CARGO_BIN_EXE_jibri-sim"), nick, &brewery, &["--domain", &auth, "--user", "jibri"], args)
    }

    /// `jigasi-sim` as `nick` (login `jigasi@recorder.<domain>`) with `args`; waits until it joined.
    pub fn jigasi(p: &Prosody, nick: &str, args: &[&str]) -> Gateway {
        let brewery = format!("JigasiBrewery@internal.auth.{}", p.domain);
        let rec = format!("recorder.{}", p.domain);
        let focus = p.focus_component();
        Gateway::start(p, "jigasi-sim", env!("CARGO_BIN_EXE_jigasi-sim"), nick, &brewery, &["--domain", &rec, "--user", "jigasi", "--focus", &focus], args)
    }

    fn start(p: &Prosody, name: &'static str, exe: &str, nick: &str, brewery: &str, login: &[&str], args: &[&str]) -> Gateway {
        let log = std::fs::File::create(p.dir.join(format!("{}-{}.log", name, nick))).unwrap();
        let mut child = Command::new(exe)
            .args(["--host", p.host(), "--port", &p.c2s_port.to_string()])
            .args(login)
            .args(["--brewery", brewery, "--nick", nick, "--trace"])
            .arg("--tls_ca_file")
            .arg(&p.ca_file)
            .args(args)
            .env("GATEWAY_PASSWORD", &p.gateway_password)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {}", name, e));
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        let g = Gateway { child, name, lines };
        let want = format!("{}: joined {}/{}", name, brewery, nick);
        assert!(g.wait_line(Duration::from_secs(15), |l| l.eq_ignore_ascii_case(&want)), "{} did not print {:?}; see {}", name, want, p.dir.display());
        g
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Wait for a line matching `f`.
    pub fn wait_line(&self, timeout: Duration, f: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines.lock().unwrap().iter().any(|l| f(l)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stanzas it received (`<-`) that contain `needle`.
    pub fn received(&self, needle: &str) -> Vec<String> {
        let prefix = format!("{}: <- ", self.name);
        self.lines().into_iter().filter_map(|l| l.strip_prefix(&prefix).map(str::to_string)).filter(|l| l.contains(needle)).collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
