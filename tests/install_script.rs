//! `scripts/install.sh` in a throw-away root (`DESTDIR`): CI is not a real host, so the
//! script runs with nothing outside the root touched, and the result is checked file by
//! file; the unit is checked with `systemd-analyze verify` where that tool exists.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fresh_root(name: &str) -> PathBuf {
    let root = repo().join("target").join("install-test").join(name);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// Run install.sh into `root` with a `systemctl`, `useradd`, `groupadd` and `chown` on the
/// PATH that only record being called (they must not be).
fn install(root: &Path) -> (Output, PathBuf) {
    let fake = root.with_extension("fakebin");
    let _ = std::fs::remove_dir_all(&fake);
    std::fs::create_dir_all(&fake).unwrap();
    let calls = fake.join("calls");
    for tool in ["systemctl", "useradd", "groupadd", "chown"] {
        let p = fake.join(tool);
        std::fs::write(&p, format!("#!/bin/sh\necho \"{} $*\" >>'{}'\n", tool, calls.display())).unwrap();
        Command::new("chmod").arg("+x").arg(&p).status().unwrap();
    }
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .arg("--no-build")
        .env("DESTDIR", root)
        .env("JICOFO_BIN", env!("CARGO_BIN_EXE_jicofo"))
        .env("PATH", path)
        .output()
        .unwrap();
    (out, calls)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

const FIXTURES: &str = "tests/fixtures/config";

#[test]
fn replaces_a_java_jicofo_and_keeps_its_configuration() {
    let root = fresh_root("java-host");
    let etc = root.join("etc/jitsi/jicofo");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(root.join("etc/init.d")).unwrap();
    std::fs::write(root.join("etc/init.d/jicofo"), "#!/bin/sh\n# the Java Jicofo's init script\n").unwrap();
    let kept = [
        ("jicofo.conf", format!("{}/debian-current/jicofo.conf", FIXTURES)),
        ("config", format!("{}/debian-2020/config", FIXTURES)),
        ("sip-communicator.properties", format!("{}/debian-2020/sip-communicator.properties", FIXTURES)),
    ];
    for (name, src) in &kept {
        std::fs::copy(repo().join(src), etc.join(name)).unwrap();
    }
    let (out, calls) = install(&root);
    let log = text(&out);
    assert!(out.status.success(), "{}", log);
    assert!(!calls.exists(), "nothing outside DESTDIR may run: {}", std::fs::read_to_string(&calls).unwrap_or_default());
    for line in [
        "would run: systemctl stop jicofo.service",
        "would run: systemctl disable jicofo.service",
        "would run: systemctl mask jicofo.service",
        "would run: useradd -r -g jitsi -M -d /nonexistent -s /usr/sbin/nologin jicofo",
        "would run: chown -R jicofo:jitsi /etc/jitsi/jicofo",
        "would run: systemctl enable --now jicofo-rs.service",
    ] {
        assert!(log.lines().any(|l| l == line), "{:?} missing:\n{}", line, log);
    }
    // The host's configuration is untouched.
    for (name, src) in &kept {
        assert_eq!(std::fs::read(etc.join(name)).unwrap(), std::fs::read(repo().join(src)).unwrap(), "{} changed", name);
    }
    // The binary runs; the unit starts it as the unprivileged user and restarts on failure.
    let bin = root.join("usr/local/bin/jicofo");
    let v = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), format!("jicofo {}", env!("CARGO_PKG_VERSION")));
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/jicofo-rs.service")).unwrap();
    for line in ["ExecStart=/usr/local/bin/jicofo $JICOFO_RS_ARGS", "User=jicofo", "Restart=on-failure", "RestartPreventExitStatus=2", "Conflicts=jicofo.service", "NoNewPrivileges=yes"] {
        assert!(unit.lines().any(|l| l == line), "{:?} not in the unit:\n{}", line, unit);
    }
    assert!(root.join("etc/default/jicofo-rs").is_file());
    // What the service would read: the kept jicofo.conf (client-only), not the old config.
    let check = Command::new(&bin)
        .args(["--check", "--user_port=1"])
        .env("JICOFO_CONFIG_DIR", &etc)
        .env_remove("JICOFO_SECRET")
        .env_remove("JICOFO_AUTH_PASSWORD")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.starts_with("ok    mode: client-only"), "{}", report);
    assert!(report.contains(&format!("configuration read from {}, {}", etc.join("sip-communicator.properties").display(), etc.join("jicofo.conf").display())), "{}", report);
    verify_unit(&unit);
}

#[test]
fn a_host_without_configuration_gets_a_template_and_later_runs_keep_local_edits() {
    let root = fresh_root("bare-host");
    let (out, calls) = install(&root);
    let log = text(&out);
    assert!(out.status.success(), "{}", log);
    assert!(!calls.exists());
    assert!(!log.contains("jicofo.service"), "no Java Jicofo here: {}", log);
    let conf = root.join("etc/jitsi/jicofo/jicofo.conf");
    assert!(log.contains("installed a template"), "{}", log);
    // The template says what is missing instead of starting against a made-up domain.
    let run = Command::new(root.join("usr/local/bin/jicofo")).env("JICOFO_CONFIG_DIR", conf.parent().unwrap()).env_remove("JICOFO_HOSTNAME").output().unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stderr).contains("no XMPP domain in"), "{}", String::from_utf8_lossy(&run.stderr));
    // A second install keeps what the operator edited.
    std::fs::write(&conf, "jicofo.xmpp.client.xmpp-domain = \"meet.example.org\"\n").unwrap();
    std::fs::write(root.join("etc/default/jicofo-rs"), "RUST_LOG=debug\n").unwrap();
    let (out, _) = install(&root);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "jicofo.xmpp.client.xmpp-domain = \"meet.example.org\"\n");
    assert_eq!(std::fs::read_to_string(root.join("etc/default/jicofo-rs")).unwrap(), "RUST_LOG=debug\n");
}

/// `systemd-analyze verify` on the unit (with the test binary's path), where it exists.
fn verify_unit(unit: &str) {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("systemd-analyze not found: unit not verified");
        return;
    }
    let dir = repo().join("target/install-test/verify");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jicofo-rs.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/jicofo", env!("CARGO_BIN_EXE_jicofo"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("jicofo-rs.service:"), "systemd-analyze verify:\n{}", err);
}
