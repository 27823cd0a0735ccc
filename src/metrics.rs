//! Counters shared by the router, the conference threads and the HTTP API: atomics
//! and one small map of conference sizes. Rendered as JSON (`/stats`) and in the
//! Prometheus text format (`/metrics`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::bridge::Bridges;

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub component_up: AtomicBool,
    pub client_up: AtomicBool,
    pub conferences_created: AtomicU64,
    pub participants_total: AtomicU64,
    pub jingle_errors: AtomicU64,
    pub colibri_errors: AtomicU64,
    pub participants_moved: AtomicU64,
    pub stanzas_sent: AtomicU64,
    /// Participants per live conference (by conference id).
    sizes: Mutex<HashMap<u64, usize>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// A conference started.
    pub fn conference_started(&self, id: u64) {
        self.conferences_created.fetch_add(1, Ordering::Relaxed);
        self.sizes.lock().insert(id, 0);
    }

    /// A conference ended.
    pub fn conference_ended(&self, id: u64) {
        self.sizes.lock().remove(&id);
    }

    /// The participant count of conference `id` changed.
    pub fn set_size(&self, id: u64, n: usize) {
        if let Some(s) = self.sizes.lock().get_mut(&id) {
            *s = n;
        }
    }

    /// A participant joined some conference.
    pub fn participant_joined(&self) {
        self.participants_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(conferences, participants, largest)` right now.
    pub fn current(&self) -> (usize, usize, usize) {
        let s = self.sizes.lock();
        (s.len(), s.values().sum(), s.values().copied().max().unwrap_or(0))
    }

    /// The `/stats` JSON.
    pub fn stats_json(&self, bridges: &Bridges, now: Instant) -> Value {
        let (conferences, participants, largest) = self.current();
        let list: Vec<Value> = {
            let mut v: Vec<_> = bridges.all().collect();
            v.sort_by(|a, b| a.jid.cmp(&b.jid));
            v.iter()
                .map(|b| {
                    json!({
                        "jid": b.jid.to_string(),
                        "stress": b.effective_stress(now),
                        "region": b.region,
                        "version": b.version,
                        "operational": b.is_operational(now),
                        "draining": b.drain,
                        "graceful_shutdown": b.graceful_shutdown,
                        "shutting_down": b.shutting_down,
                    })
                })
                .collect()
        };
        json!({
            "conferences": conferences,
            "participants": participants,
            "largest_conference": largest,
            "total_conferences_created": self.conferences_created.load(Ordering::Relaxed),
            "total_participants": self.participants_total.load(Ordering::Relaxed),
            "bridge_selector": {
                "bridge_count": bridges.len(),
                "operational_bridge_count": bridges.operational_count(now),
                "bridges": list,
            },
            "jingle": { "errors": self.jingle_errors.load(Ordering::Relaxed) },
            "colibri": { "errors": self.colibri_errors.load(Ordering::Relaxed) },
            "bridge_failures": { "participants_moved": self.participants_moved.load(Ordering::Relaxed) },
            "xmpp": {
                "component_connected": self.component_up.load(Ordering::Relaxed),
                "client_connected": self.client_up.load(Ordering::Relaxed),
                "stanzas_sent": self.stanzas_sent.load(Ordering::Relaxed),
            },
        })
    }

    /// The `/metrics` text (Prometheus exposition format 0.0.4).
    pub fn prometheus(&self, bridges: &Bridges, now: Instant) -> String {
        let (conferences, participants, largest) = self.current();
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, v: f64| {
            out.push_str(&format!("# HELP jitsi_jicofo_{0} {1}\n# TYPE jitsi_jicofo_{0} {2}\njitsi_jicofo_{0} {3}\n", name, help, kind, v));
        };
        gauge("conferences", "Running conferences.", "gauge", conferences as f64);
        gauge("participants", "Participants in running conferences.", "gauge", participants as f64);
        gauge("largest_conference", "Participants in the largest conference.", "gauge", largest as f64);
        gauge(
            "conferences_created_total",
            "Conferences created since start.",
            "counter",
            self.conferences_created.load(Ordering::Relaxed) as f64,
        );
        gauge(
            "participants_total",
            "Participants joined since start.",
            "counter",
            self.participants_total.load(Ordering::Relaxed) as f64,
        );
        gauge("jingle_errors_total", "Jingle errors.", "counter", self.jingle_errors.load(Ordering::Relaxed) as f64);
        gauge("colibri_errors_total", "Colibri errors.", "counter", self.colibri_errors.load(Ordering::Relaxed) as f64);
        gauge(
            "participants_moved_total",
            "Participants moved off failed bridges.",
            "counter",
            self.participants_moved.load(Ordering::Relaxed) as f64,
        );
        gauge("stanzas_sent_total", "Stanzas the focus sent (both connections).", "counter", self.stanzas_sent.load(Ordering::Relaxed) as f64);
        gauge("bridge_count", "Bridges in the brewery.", "gauge", bridges.len() as f64);
        gauge("bridge_count_operational", "Operational bridges.", "gauge", bridges.operational_count(now) as f64);
        gauge("xmpp_component_connected", "Component connection up.", "gauge", self.component_up.load(Ordering::Relaxed) as u8 as f64);
        gauge("xmpp_client_connected", "Client connection up.", "gauge", self.client_up.load(Ordering::Relaxed) as u8 as f64);
        out.push_str("# HELP jitsi_jicofo_bridge_stress Stress of each bridge.\n# TYPE jitsi_jicofo_bridge_stress gauge\n");
        let mut v: Vec<_> = bridges.all().collect();
        v.sort_by(|a, b| a.jid.cmp(&b.jid));
        for b in v {
            out.push_str(&format!(
                "jitsi_jicofo_bridge_stress{{jid=\"{}\"}} {}\n",
                b.jid.to_string().replace('\\', "\\\\").replace('"', "\\\""),
                b.effective_stress(now)
            ));
        }
        out
    }
}
