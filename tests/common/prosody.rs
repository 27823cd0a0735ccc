//! Test support: a private Prosody (Jitsi Meet single-host layout) per test, driven by
//! `scripts/prosody.sh`.
//!
//! ```ignore
//! let p = Prosody::start("my_test");          // <repo>/target/test-prosody/my_test
//! // p.c2s_port, p.component_port, p.focus_secret, p.ca_file, ...
//! p.restart();                                // same ports, secrets and accounts
//! drop(p);                                    // stops it
//! ```
//!
//! Every `start` begins from a clean instance directory (a leftover instance from a killed test
//! run is stopped and its directory removed), so each call gets fresh free ports, secrets and
//! server state. `restart` keeps the directory, hence the same ports (persisted by the script).
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How `focus.<domain>` is declared (`PROSODY_LAYOUT` of `scripts/prosody.sh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// An external component with a secret (the seed's layout).
    Seed,
    /// A client_proxy forwarding to the focus user, no component secret (Debian since
    /// 2021); `subscribed`: the proxy is in the focus's roster, as the installer leaves it.
    ClientProxy { subscribed: bool },
}

pub struct Prosody {
    pub dir: PathBuf,
    pub layout: Layout,
    pub domain: String,
    pub c2s_port: u16,
    pub component_port: u16,
    pub http_port: u16,
    pub focus_secret: String,
    pub focus_password: String,
    pub jvb_password: String,
    /// `("user1", password)`, `("user2", password)` on `auth.<domain>`.
    pub user_passwords: Vec<(String, String)>,
    /// PEM of the test CA that signed Prosody's certificate.
    pub ca_file: PathBuf,
    /// Password of `jibri@auth.<domain>`, `recorder@recorder.<domain>`, `jigasi@recorder.<domain>`.
    pub gateway_password: String,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo_root().join("scripts").join("prosody.sh")
}

/// Runs `scripts/prosody.sh <cmd> <dir>`, panicking with its stderr on failure.
fn run_script(cmd: &str, dir: &Path) {
    run_script_with(cmd, dir, &[])
}

fn run_script_with(cmd: &str, dir: &Path, env: &[(&str, &str)]) {
    let out = Command::new("bash")
        .arg(script())
        .arg(cmd)
        .arg(dir)
        .env_remove("PROSODY_LAYOUT")
        .env_remove("PROSODY_PROXY_SUBSCRIBED")
        .envs(env.iter().copied())
        // the instance directory is given explicitly; don't let the caller's env interfere
        .env_remove("PROSODY_DIR")
        .env_remove("PROSODY_C2S_PORT")
        .env_remove("PROSODY_COMPONENT_PORT")
        .env_remove("PROSODY_HTTP_PORT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
    if !out.status.success() {
        panic!(
            "scripts/prosody.sh {cmd} {} failed ({}):\n{}{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Parses the `export KEY='value'` lines of `DIR/env`.
pub fn parse_env(text: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            map.insert(k.trim().to_string(), v.to_string());
        }
    }
    map
}

fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // a zombie (state Z) no longer runs
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next()),
            Some(Some('Z'))
        ),
        Err(_) => false,
    }
}

impl Prosody {
    /// Starts a fresh instance in `<repo>/target/test-prosody/<name>`.
    pub fn start(name: &str) -> Prosody {
        Prosody::start_layout(name, Layout::Seed)
    }

    /// Starts a fresh instance with `focus.<domain>` declared as `layout` says.
    pub fn start_layout(name: &str, layout: Layout) -> Prosody {
        let dir = repo_root().join("target").join("test-prosody").join(name);
        if dir.exists() {
            // leftover from an earlier (killed) run: stop it and start clean
            run_script("stop", &dir);
            fs::remove_dir_all(&dir)
                .unwrap_or_else(|e| panic!("cannot remove {}: {e}", dir.display()));
        }
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let env: &[(&str, &str)] = match layout {
            Layout::Seed => &[("PROSODY_LAYOUT", "seed")],
            Layout::ClientProxy { subscribed: true } => &[("PROSODY_LAYOUT", "client_proxy"), ("PROSODY_PROXY_SUBSCRIBED", "1")],
            Layout::ClientProxy { subscribed: false } => &[("PROSODY_LAYOUT", "client_proxy"), ("PROSODY_PROXY_SUBSCRIBED", "0")],
        };
        run_script_with("start", &dir, env);
        let mut p = Prosody::from_dir(&dir);
        p.layout = layout;
        p
    }

    /// Reads `DIR/env` of an instance started by the script. The returned handle owns the
    /// instance: dropping it stops the server.
    pub fn from_dir(dir: &Path) -> Prosody {
        let env_path = dir.join("env");
        let text = fs::read_to_string(&env_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", env_path.display()));
        let env = parse_env(&text);
        let get = |k: &str| -> String {
            env.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{} has no {k}", env_path.display()))
        };
        let port = |k: &str| -> u16 {
            get(k)
                .parse()
                .unwrap_or_else(|e| panic!("{k} in {}: {e}", env_path.display()))
        };
        let layout = match env.get("PROSODY_LAYOUT").map(String::as_str) {
            Some("client_proxy") => Layout::ClientProxy { subscribed: true },
            _ => Layout::Seed,
        };
        Prosody {
            dir: PathBuf::from(get("PROSODY_DIR")),
            layout,
            domain: get("XMPP_DOMAIN"),
            c2s_port: port("C2S_PORT"),
            component_port: port("COMPONENT_PORT"),
            http_port: port("HTTP_PORT"),
            focus_secret: get("FOCUS_SECRET"),
            focus_password: get("FOCUS_PASSWORD"),
            jvb_password: get("JVB_PASSWORD"),
            user_passwords: vec![
                ("user1".to_string(), get("USER1_PASSWORD")),
                ("user2".to_string(), get("USER2_PASSWORD")),
            ],
            ca_file: PathBuf::from(get("CA_FILE")),
            gateway_password: get("GATEWAY_PASSWORD"),
        }
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// `auth.<domain>`: where focus, jvb, user1 and user2 log in.
    pub fn auth_domain(&self) -> String {
        format!("auth.{}", self.domain)
    }

    /// `conference.<domain>`.
    pub fn muc_domain(&self) -> String {
        format!("conference.{}", self.domain)
    }

    /// `focus.<domain>` (XEP-0114 component, secret `focus_secret`).
    pub fn focus_component(&self) -> String {
        format!("focus.{}", self.domain)
    }

    /// `JvbBrewery@internal.auth.<domain>`.
    pub fn brewery_jid(&self) -> String {
        format!("JvbBrewery@internal.auth.{}", self.domain)
    }

    pub fn websocket_url(&self) -> String {
        format!("ws://127.0.0.1:{}/xmpp-websocket", self.http_port)
    }

    /// The password of `user` (`"user1"`, `"user2"`) on `auth.<domain>`.
    pub fn user_password(&self, user: &str) -> Option<&str> {
        self.user_passwords
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
    }

    /// Pid of the running server, if any.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.dir.join("prosody.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        pid_alive(pid).then_some(pid)
    }

    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Stops the server (SIGTERM, SIGKILL after 5 s). Harmless when already stopped.
    pub fn stop(&self) {
        run_script("stop", &self.dir);
    }

    /// Stops and starts the server again on the same ports, with the same secrets and accounts
    /// (MUC rooms and sessions are gone).
    pub fn restart(&self) {
        self.stop();
        let subscribed = match self.layout {
            Layout::ClientProxy { subscribed: false } => "0",
            _ => "1",
        };
        run_script_with("start", &self.dir, &[("PROSODY_PROXY_SUBSCRIBED", subscribed)]);
        // (not via from_dir: dropping that second handle would stop the server again)
        let env = parse_env(&fs::read_to_string(self.dir.join("env")).unwrap_or_default());
        let ports = ["C2S_PORT", "COMPONENT_PORT", "HTTP_PORT"]
            .map(|k| env.get(k).and_then(|v| v.parse::<u16>().ok()));
        assert_eq!(
            ports,
            [
                Some(self.c2s_port),
                Some(self.component_port),
                Some(self.http_port)
            ],
            "prosody restarted on other ports"
        );
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        // never panic in drop (could abort during unwinding)
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}
