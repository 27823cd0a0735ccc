//! `/stats` and `/metrics` (and `/about/health`): the process counters
//! ([`crate::metrics::Metrics`]) and the bridges rendered as JSON and in the Prometheus
//! text format.
//!
//! `/metrics` also carries the names Jicofo's own Prometheus endpoint uses for the same
//! facts ([`JICOFO_NAMES`], the README's table), so that dashboards and alerts built for
//! Jicofo keep working; where our name already is Jicofo's, it is exported once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{json, Value};

use crate::bridge::Bridges;
use crate::metrics::{ConferenceInfo, Metrics};

/// Jicofo's metric names (without the `jitsi_jicofo_` prefix, as exposed in the text
/// format: counters with `_total`), their type, and the metric of ours for the same fact
/// (`None`: exported under Jicofo's name only). The README's table lists the same rows.
pub const JICOFO_NAMES: &[(&str, &str, Option<&str>)] = &[
    ("conferences", "gauge", Some("conferences")),
    ("participants_current", "gauge", Some("participants")),
    ("participants_total", "counter", Some("participants_total")),
    ("conferences_created_total", "counter", Some("conferences_created_total")),
    ("largest_conference", "gauge", Some("largest_conference")),
    ("participants_pairs", "gauge", None),
    ("participants_moved_total", "counter", Some("participants_moved_total")),
    ("conference_requests_total", "counter", None),
    ("conference_requests_new_total", "counter", None),
    ("bridge_selector_bridge_count", "gauge", Some("bridge_count")),
    ("bridge_selector_bridge_count_operational", "gauge", Some("bridge_count_operational")),
    ("bridge_selector_bridge_count_in_shutdown", "gauge", None),
    ("bridge_selector_bridge_version_count", "gauge", None),
    ("jibri_instances", "gauge", Some("jibri_instances")),
    ("jibri_instances_available", "gauge", Some("jibri_instances_available")),
    ("sip_jibri_instances", "gauge", Some("sip_jibri_instances")),
    ("sip_jibri_instances_available", "gauge", Some("sip_jibri_instances_available")),
    ("xmpp_disconnects_total", "counter", None),
    ("healthy", "gauge", None),
    ("threads", "gauge", None),
    ("version_info", "gauge", None),
];

/// Threads of this process (Linux: `/proc/self/status`; 0 elsewhere).
fn thread_count() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// Rendering (the counting is in `crate::metrics`).
impl Metrics {
    /// What keeps the focus from being healthy (empty: healthy): a connection it needs
    /// is down (the component only when it has one), or no bridge is operational.
    pub fn health_problems(&self, bridges: &Bridges, now: Instant) -> Vec<&'static str> {
        let mut problems = Vec::new();
        if !self.client_only && !self.component_up.load(Ordering::Relaxed) {
            problems.push("the component connection is down");
        }
        if !self.client_up.load(Ordering::Relaxed) {
            problems.push("the client connection is down");
        }
        if bridges.operational_count(now) == 0 {
            problems.push("no operational bridge");
        }
        problems
    }

    /// The `/stats` JSON.
    pub fn stats_json(&self, bridges: &Bridges, now: Instant) -> Value {
        let (conferences, participants, largest) = self.current();
        let g = self.gateway_figures();
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
        let mut confs: Vec<ConferenceInfo> = self.conferences();
        confs.sort_by(|a, b| a.room.cmp(&b.room));
        // The list is for operators looking at a host; past 100 it is cut.
        let conference_list: Vec<Value> = confs
            .iter()
            .take(100)
            .map(|c| json!({"room": c.room, "participants": c.participants, "bridge": c.bridge}))
            .collect();
        json!({
            "conferences": conferences,
            "conference_list": conference_list,
            "participants": participants,
            "largest_conference": largest,
            "total_conferences_created": self.conferences_created.load(Ordering::Relaxed),
            "total_participants": self.participants_total.load(Ordering::Relaxed),
            "bridge_selector": {
                "bridge_count": bridges.len(),
                "operational_bridge_count": bridges.operational_count(now),
                "bridges": list,
            },
            "jingle": { "errors": self.jingle_errors.load(Ordering::Relaxed), "focus_added": self.focus_added_summary() },
            "colibri": { "errors": self.colibri_errors.load(Ordering::Relaxed) },
            "jibri_detector": { "count": g.jibri[0].0, "available": g.jibri[0].1 },
            "sip_jibri_detector": { "count": g.jibri[1].0, "available": g.jibri[1].1 },
            "jibri": {
                "recording_sessions": { "started": g.sessions[0].0, "failed": g.sessions[0].1, "active": g.sessions[0].2 },
                "sip_sessions": { "started": g.sessions[1].0, "failed": g.sessions[1].1, "active": g.sessions[1].2 },
            },
            "jigasi_detector": { "count": g.jigasi.0, "sip_count": g.jigasi.1, "transcriber_count": g.jigasi.2 },
            "jigasi": { "dials": g.dials.0, "dials_answered": g.dials.1, "dials_failed": g.dials.2 },
            "plugin_messages": self.component_messages.load(Ordering::Relaxed),
            "bridge_failures": { "participants_moved": self.participants_moved.load(Ordering::Relaxed) },
            "limits": {
                "refused": self.limits.pairs().iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "forged_answers": self.forged_answers.load(Ordering::Relaxed),
                "plugin_messages_ignored": self.component_messages_ignored.load(Ordering::Relaxed),
                "plugin_messages_invalid": self.component_messages_invalid.load(Ordering::Relaxed),
                "plugin_messages_dropped": self.component_messages_dropped.load(Ordering::Relaxed),
                "requests_refused_locally": self.requests_refused_locally.load(Ordering::Relaxed),
                "participants_over_limit": self.participants_over_limit.load(Ordering::Relaxed),
            },
            "xmpp": {
                "mode": if self.client_only { "client_only" } else { "component_and_client" },
                "component_connected": self.component_up.load(Ordering::Relaxed),
                "client_connected": self.client_up.load(Ordering::Relaxed),
                "stanzas_sent": self.stanzas_sent.load(Ordering::Relaxed),
                "reconnects": self.component_reconnects.load(Ordering::Relaxed) + self.client_reconnects.load(Ordering::Relaxed),
                "component_reconnects": self.component_reconnects.load(Ordering::Relaxed),
                "client_reconnects": self.client_reconnects.load(Ordering::Relaxed),
            },
        })
    }

    /// The metrics Jicofo exports under names of its own (see [`JICOFO_NAMES`]).
    fn jicofo_names(&self, out: &mut String, bridges: &Bridges, now: Instant) {
        let mut put = |name: &str, kind: &str, help: &str, sample: String| {
            // Jicofo's (simpleclient's) family name of a counter has no `_total`.
            let family = if kind == "counter" { name.trim_end_matches("_total") } else { name };
            out.push_str(&format!("# HELP jitsi_jicofo_{0} {1}\n# TYPE jitsi_jicofo_{0} {2}\n{3}\n", family, help, kind, sample));
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (pairs, participants) = {
            let s = self.conferences();
            (s.iter().map(|c| (c.participants * c.participants.saturating_sub(1)) as u64).sum::<u64>(), s.iter().map(|c| c.participants).sum::<usize>())
        };
        let gauge = |name: &str, v: u64| format!("jitsi_jicofo_{} {}", name, v);
        put("participants_current", "gauge", "The current number of participants (Jicofo's name).", gauge("participants_current", participants as u64));
        put("participants_pairs", "gauge", "The number of pairs of participants (the sum of n*(n-1) for each conference).", gauge("participants_pairs", pairs));
        put("conference_requests_total", "counter", "Number of conference requests received.", gauge("conference_requests_total", load(&self.conference_requests)));
        put(
            "conference_requests_new_total",
            "counter",
            "Number of conference requests received for new conferences.",
            gauge("conference_requests_new_total", load(&self.conference_requests_new)),
        );
        let in_shutdown = bridges.all().filter(|b| b.graceful_shutdown || b.shutting_down).count() as u64;
        let versions: std::collections::HashSet<&str> = bridges.all().filter_map(|b| b.version.as_deref()).collect();
        put("bridge_selector_bridge_count", "gauge", "The current number of bridges (Jicofo's name).", gauge("bridge_selector_bridge_count", bridges.len() as u64));
        put(
            "bridge_selector_bridge_count_operational",
            "gauge",
            "The current number of operational bridges (Jicofo's name).",
            gauge("bridge_selector_bridge_count_operational", bridges.operational_count(now) as u64),
        );
        put("bridge_selector_bridge_count_in_shutdown", "gauge", "The current number of bridges in graceful shutdown.", gauge("bridge_selector_bridge_count_in_shutdown", in_shutdown));
        put("bridge_selector_bridge_version_count", "gauge", "The current number of different bridge versions.", gauge("bridge_selector_bridge_version_count", versions.len() as u64));
        put(
            "xmpp_disconnects_total",
            "counter",
            "The number of times one of the XMPP connections has disconnected.",
            gauge("xmpp_disconnects_total", load(&self.xmpp_disconnects)),
        );
        let healthy = self.health_problems(bridges, now).is_empty();
        put("healthy", "gauge", "Whether jicofo is healthy or not.", gauge("healthy", healthy as u64));
        put("threads", "gauge", "The current number of threads.", gauge("threads", thread_count()));
        put(
            "version_info",
            "gauge",
            "Application version",
            format!("jitsi_jicofo_version_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
        );
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
        gauge("forged_answers_total", "IQ answers dropped: not from the request's addressee.", "counter", self.forged_answers.load(Ordering::Relaxed) as f64);
        gauge("plugin_messages_total", "Messages from discovered Jitsi Prosody plugins (AV moderation, room metadata) handed to conferences.", "counter", self.component_messages.load(Ordering::Relaxed) as f64);
        gauge(
            "plugin_messages_ignored_total",
            "Plugin messages ignored: not from a discovered plugin address (forged or undiscovered).",
            "counter",
            self.component_messages_ignored.load(Ordering::Relaxed) as f64,
        );
        gauge(
            "plugin_messages_invalid_total",
            "Plugin messages refused as malformed or over their bounds.",
            "counter",
            self.component_messages_invalid.load(Ordering::Relaxed) as f64,
        );
        gauge(
            "plugin_messages_dropped_total",
            "Plugin messages dropped: a full conference inbox already held too many.",
            "counter",
            self.component_messages_dropped.load(Ordering::Relaxed) as f64,
        );
        gauge(
            "requests_refused_locally_total",
            "Requests a conference did not send: too many outstanding.",
            "counter",
            self.requests_refused_locally.load(Ordering::Relaxed) as f64,
        );
        gauge(
            "participants_over_limit_total",
            "Participants past --max_participants.",
            "counter",
            self.participants_over_limit.load(Ordering::Relaxed) as f64,
        );
        gauge("bridge_count", "Bridges in the brewery.", "gauge", bridges.len() as f64);
        let g = self.gateway_figures();
        gauge("jibri_instances", "Current number of jibri instances.", "gauge", g.jibri[0].0 as f64);
        gauge("jibri_instances_available", "Current number of available (healthy, idle) jibri instances.", "gauge", g.jibri[0].1 as f64);
        gauge("sip_jibri_instances", "Current number of SIP jibri instances.", "gauge", g.jibri[1].0 as f64);
        gauge("sip_jibri_instances_available", "Current number of available SIP jibri instances.", "gauge", g.jibri[1].1 as f64);
        for (i, kind) in ["recording", "sip"].iter().enumerate() {
            let (started, failed, active) = g.sessions[i];
            let p = if i == 0 { "jibri" } else { "sip_jibri" };
            gauge(&format!("{}_sessions_started_total", p), &format!("Jibri {} sessions a Jibri accepted.", kind), "counter", started as f64);
            gauge(&format!("{}_sessions_failed_total", p), &format!("Jibri {} sessions that failed.", kind), "counter", failed as f64);
            gauge(&format!("{}_sessions_active", p), &format!("Jibri {} sessions running.", kind), "gauge", active as f64);
        }
        gauge("jigasi_instances", "Jigasi instances in the brewery.", "gauge", g.jigasi.0 as f64);
        gauge("jigasi_instances_sip", "Jigasi instances that take SIP calls.", "gauge", g.jigasi.1 as f64);
        gauge("jigasi_instances_transcription", "Jigasi instances that transcribe.", "gauge", g.jigasi.2 as f64);
        gauge("jigasi_dials_total", "Dials forwarded to a Jigasi.", "counter", g.dials.0 as f64);
        gauge("jigasi_dials_answered_total", "Dials a Jigasi answered with a ref.", "counter", g.dials.1 as f64);
        gauge("jigasi_dials_failed_total", "Dials that failed.", "counter", g.dials.2 as f64);
        gauge("bridge_count_operational", "Operational bridges.", "gauge", bridges.operational_count(now) as f64);
        if !self.client_only {
            gauge("xmpp_component_connected", "Component connection up.", "gauge", self.component_up.load(Ordering::Relaxed) as u8 as f64);
        }
        gauge("xmpp_client_connected", "Client connection up.", "gauge", self.client_up.load(Ordering::Relaxed) as u8 as f64);
        out.push_str("# HELP jitsi_jicofo_xmpp_reconnects_total Re-connections after a loss, per XMPP connection.\n# TYPE jitsi_jicofo_xmpp_reconnects_total counter\n");
        let conns: &[(&str, &AtomicU64)] = if self.client_only {
            &[("client", &self.client_reconnects)]
        } else {
            &[("component", &self.component_reconnects), ("client", &self.client_reconnects)]
        };
        for (name, c) in conns {
            out.push_str(&format!("jitsi_jicofo_xmpp_reconnects_total{{connection=\"{}\"}} {}\n", name, c.load(Ordering::Relaxed)));
        }
        self.jicofo_names(&mut out, bridges, now);
        let fa = self.focus_added_summary();
        out.push_str("# HELP jitsi_jicofo_focus_added_seconds From the bridge's allocation answer to the session-initiate queued (latest invites).\n# TYPE jitsi_jicofo_focus_added_seconds summary\n");
        for (q, k) in [("0.5", "p50_us"), ("0.99", "p99_us")] {
            if let Some(us) = fa[k].as_u64() {
                out.push_str(&format!("jitsi_jicofo_focus_added_seconds{{quantile=\"{}\"}} {}\n", q, us as f64 / 1e6));
            }
        }
        out.push_str(&format!("jitsi_jicofo_focus_added_seconds_count {}\n", fa["count"]));
        out.push_str("# HELP jitsi_jicofo_limit_refusals_total Requests refused or presences dropped under the limits, by reason.\n# TYPE jitsi_jicofo_limit_refusals_total counter\n");
        for (k, v) in self.limits.pairs() {
            out.push_str(&format!("jitsi_jicofo_limit_refusals_total{{reason=\"{}\"}} {}\n", k, v));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ConferenceId;

    #[test]
    fn limit_counters_show_in_stats_and_metrics() {
        let m = Metrics::new();
        Metrics::inc(&m.limits.max_conferences);
        Metrics::inc(&m.limits.presences_coalesced);
        Metrics::inc(&m.limits.presences_coalesced);
        Metrics::inc(&m.forged_answers);
        let b = Bridges::new();
        let now = Instant::now();
        let s = m.stats_json(&b, now);
        assert_eq!(s["limits"]["refused"]["max_conferences"], 1);
        assert_eq!(s["limits"]["refused"]["presences_coalesced"], 2);
        assert_eq!(s["limits"]["refused"]["new_rooms_total"], 0);
        assert_eq!(s["limits"]["forged_answers"], 1);
        let p = m.prometheus(&b, now);
        assert!(p.contains("jitsi_jicofo_limit_refusals_total{reason=\"max_conferences\"} 1\n"), "{}", p);
        assert!(p.contains("jitsi_jicofo_limit_refusals_total{reason=\"presences_coalesced\"} 2\n"));
        assert!(p.contains("jitsi_jicofo_forged_answers_total 1\n"));
    }

    #[test]
    fn xmpp_reconnects_in_stats_and_metrics() {
        let m = Metrics::new();
        let bridges = Bridges::default();
        let now = Instant::now();
        Metrics::inc(&m.component_reconnects);
        Metrics::inc(&m.client_reconnects);
        Metrics::inc(&m.client_reconnects);
        let v = m.stats_json(&bridges, now);
        assert_eq!(v["xmpp"]["reconnects"], 3);
        assert_eq!(v["xmpp"]["component_reconnects"], 1);
        assert_eq!(v["xmpp"]["client_reconnects"], 2);
        let t = m.prometheus(&bridges, now);
        assert!(t.contains("# TYPE jitsi_jicofo_xmpp_reconnects_total counter\n"), "{t}");
        assert!(t.contains("jitsi_jicofo_xmpp_reconnects_total{connection=\"component\"} 1\n"), "{t}");
        assert!(t.contains("jitsi_jicofo_xmpp_reconnects_total{connection=\"client\"} 2\n"), "{t}");
    }

    /// The exported metric names (sample names without labels) of a `/metrics` text.
    pub(crate) fn exported(text: &str) -> std::collections::HashSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split([' ', '{']).next().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn every_jicofo_name_is_exported_with_its_type() {
        let m = Metrics::new();
        m.conference_started(ConferenceId(1), "a@c.test");
        m.set_size(ConferenceId(1), 3);
        m.conference_started(ConferenceId(2), "b@c.test");
        m.set_size(ConferenceId(2), 2);
        Metrics::inc(&m.xmpp_disconnects);
        let text = m.prometheus(&Bridges::new(), Instant::now());
        let names = exported(&text);
        for (name, kind, ours) in JICOFO_NAMES {
            assert!(names.contains(&format!("jitsi_jicofo_{}", name)), "{} missing:\n{}", name, text);
            let family = if *kind == "counter" { name.trim_end_matches("_total") } else { name };
            let ours_is_it = ours.is_some_and(|o| o == *name);
            assert!(
                text.contains(&format!("# TYPE jitsi_jicofo_{} {}\n", family, kind)) || ours_is_it,
                "{} is not a {}",
                name,
                kind
            );
            if let Some(o) = ours {
                assert!(names.contains(&format!("jitsi_jicofo_{}", o)), "our {} missing", o);
            }
        }
        assert!(text.contains("jitsi_jicofo_participants_current 5\n"), "{}", text);
        assert!(text.contains("jitsi_jicofo_participants_pairs 8\n"), "3*2 + 2*1: {}", text);
        assert!(text.contains("jitsi_jicofo_xmpp_disconnects_total 1\n"));
        assert!(text.contains("jitsi_jicofo_healthy 0\n"), "no bridge, no connection");
        // Every sample name is exported once (no alias doubles one of ours).
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).map(|l| l.split([' ', '{']).next().unwrap()).collect();
        for n in &names {
            let lines = samples.iter().filter(|s| *s == n).count();
            assert!(lines == 1 || text.contains(&format!("{}{{", n)), "{} exported {} times", n, lines);
        }
    }

    #[test]
    fn jibri_and_jigasi_figures_in_stats_and_metrics() {
        use crate::metrics::{GatewayFigures, GatewaySource};
        let m = Metrics::new();
        m.set_gateways(GatewaySource(Box::new(|| GatewayFigures {
            jibri: [(1, 1), (0, 0)],
            sessions: [(1, 0, 0), (0, 0, 0)],
            jigasi: (0, 0, 0),
            dials: (0, 0, 1),
        })));
        let st = m.stats_json(&Bridges::new(), Instant::now());
        assert_eq!(st["jibri_detector"]["count"], 1);
        assert_eq!(st["jibri_detector"]["available"], 1);
        assert_eq!(st["jibri"]["recording_sessions"]["started"], 1);
        assert_eq!(st["jigasi"]["dials_failed"], 1);
        let text = m.prometheus(&Bridges::new(), Instant::now());
        for line in ["jitsi_jicofo_jibri_instances 1\n", "jitsi_jicofo_jibri_instances_available 1\n", "jitsi_jicofo_jibri_sessions_started_total 1\n", "jitsi_jicofo_jigasi_dials_failed_total 1\n", "jitsi_jicofo_sip_jibri_instances 0\n"] {
            assert!(text.contains(line), "{} missing", line);
        }
    }

    #[test]
    fn the_readme_table_lists_exactly_the_jicofo_names() {
        let readme = include_str!("../../README.md");
        let start = readme.find("<!-- metric-names -->").expect("README has the metric-name table");
        let table = &readme[start..readme[start..].find("<!-- /metric-names -->").map(|e| start + e).expect("table end")];
        let mut rows = Vec::new();
        for line in table.lines().filter(|l| l.starts_with("| ")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let Some(jicofo) = cells[2].trim_matches('`').strip_prefix("jitsi_jicofo_") else { continue };
            let jicofo = jicofo.split('{').next().unwrap_or_default().to_string();
            let ours = cells[1].trim_matches('`');
            rows.push((jicofo, ours.to_string()));
        }
        let want: Vec<String> = JICOFO_NAMES.iter().map(|(n, _, _)| n.to_string()).collect();
        let got: Vec<String> = rows.iter().map(|(j, _)| j.clone()).collect();
        assert_eq!(got, want, "README table rows vs JICOFO_NAMES");
        let text = Metrics::new().prometheus(&Bridges::new(), Instant::now());
        let names = exported(&text);
        for (jicofo, ours) in rows {
            let jicofo = jicofo.split('{').next().unwrap().to_string();
            assert!(names.contains(&format!("jitsi_jicofo_{}", jicofo)), "{} in the README but not exported", jicofo);
            if ours.starts_with("jitsi_jicofo_") {
                assert!(names.contains(ours.split('{').next().unwrap()), "{} in the README but not exported", ours);
            }
        }
    }
}
