//! Bridges: the set discovered in the brewery MUC, their health, and selection.
//!
//! The router (event loop thread) feeds brewery presences and health-check answers
//! into [`Bridges`], a value shared with conference threads behind a mutex. Nothing
//! here does I/O: health checks are produced as stanzas by [`Bridges::tick`] (their ids
//! come from the router's pending table, which checks who answers) and their answers
//! handed back with [`Bridges::on_health_answer`], which also accepts only the bridge
//! the check went to; what changed comes back as [`BridgeEvent`]s for the router to
//! pass to conferences.
//!
//! Selection (see [`Bridges::select`]): a conference keeps its bridge while it is
//! usable; otherwise the least stressed operational bridge, preferring the
//! participant's region; a bridge at stress ≥ 0.8 only when nothing else is left;
//! draining, graceful-shutdown and shutting-down bridges take no new conferences.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::jid::Jid;
use crate::messages::BridgeEvent;
use crate::xml::Element;
use crate::xmpp::incoming::Incoming;
use crate::xmpp::ns;
use crate::xmpp::presence::{Presence, Stat};

/// Stress at and above which a bridge is overloaded.
pub const STRESS_THRESHOLD: f64 = 0.8;
/// How long a failed bridge stays out of selection.
pub const FAILURE_RESET: Duration = Duration::from_secs(60);
/// Health-check period.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
/// A health check unanswered this long is retried once, then the bridge fails.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Endpoints added this recently count towards a bridge's stress.
const RAMPUP: Duration = Duration::from_secs(20);

/// One bridge as the brewery shows it.
#[derive(Clone, Debug)]
pub struct Bridge {
    /// Its occupant JID in the brewery: colibri and health IQs go there.
    pub jid: Jid,
    /// Reported load (`stress_level` stat; 0 idle, overloaded from [`STRESS_THRESHOLD`] on).
    pub stress: f64,
    /// Stress each newly added endpoint is assumed to add until the bridge reports it
    /// (`average_participant_stress` stat; 0.01 until a presence says otherwise).
    pub average_participant_stress: f64,
    /// Where it runs (`region` stat); selection prefers the participant's region.
    pub region: Option<String>,
    /// Octo relay id (`relay_id` stat): what a multi-bridge conference would need; read,
    /// not used (Octo is not done).
    pub relay_id: Option<String>,
    /// The bridge's version (`version` stat), shown in `/stats`.
    pub version: Option<String>,
    /// Draining (`drain` stat): keeps its conferences, takes no new ones. True until a
    /// stats presence says otherwise.
    pub drain: bool,
    /// In graceful shutdown (`graceful_shutdown` stat): keeps its conferences, takes no new ones.
    pub graceful_shutdown: bool,
    /// Shutting down (`shutting_down` stat): not operational; its conferences move away.
    pub shutting_down: bool,
    /// Out of selection until then (failed health check or colibri timeout).
    pub failed_until: Option<Instant>,
    recent: VecDeque<Instant>,
}

impl Bridge {
    fn new(jid: Jid) -> Bridge {
        Bridge {
            jid,
            stress: 0.0,
            average_participant_stress: 0.01,
            region: None,
            relay_id: None,
            version: None,
            // A bridge counts as draining until a presence says otherwise.
            drain: true,
            graceful_shutdown: false,
            shutting_down: false,
            failed_until: None,
            recent: VecDeque::new(),
        }
    }

    /// Healthy and not shutting down.
    pub fn is_operational(&self, now: Instant) -> bool {
        self.failed_until.is_none_or(|t| now >= t) && !self.shutting_down
    }

    /// Takes new conferences.
    pub fn accepts_new(&self, now: Instant) -> bool {
        self.is_operational(now) && !self.drain && !self.graceful_shutdown
    }

    /// Reported stress plus the endpoints added recently.
    pub fn effective_stress(&self, now: Instant) -> f64 {
        let recent = self.recent.iter().filter(|t| now.duration_since(**t) < RAMPUP).count();
        self.stress + recent as f64 * self.average_participant_stress
    }

    fn apply_stats(&mut self, stats: &[Stat]) {
        for s in stats {
            let (Some(name), Some(value)) = (s.name.as_deref(), s.value.as_deref()) else { continue };
            match name {
                "stress_level" => self.stress = value.parse().unwrap_or(self.stress),
                "average_participant_stress" => {
                    self.average_participant_stress = value.parse().unwrap_or(self.average_participant_stress)
                }
                "region" => self.region = Some(value.to_string()).filter(|v| !v.is_empty()),
                "relay_id" => self.relay_id = Some(value.to_string()).filter(|v| !v.is_empty()),
                "version" => self.version = Some(value.to_string()),
                "drain" => self.drain = value == "true",
                "graceful_shutdown" => self.graceful_shutdown = value == "true",
                "shutting_down" => self.shutting_down = value == "true",
                _ => {}
            }
        }
    }
}

#[derive(Clone, Debug)]
struct HealthCheck {
    bridge: Jid,
    deadline: Instant,
    retry: bool,
}

/// All bridges of the brewery.
#[derive(Debug, Default)]
pub struct Bridges {
    bridges: HashMap<Jid, Bridge>,
    next_check: HashMap<Jid, Instant>,
    pending: HashMap<String, HealthCheck>,
}

impl Bridges {
    /// No bridges yet.
    pub fn new() -> Bridges {
        Bridges::default()
    }

    /// A bridge by occupant JID.
    pub fn get(&self, jid: &Jid) -> Option<&Bridge> {
        self.bridges.get(jid)
    }

    /// All bridges.
    pub fn all(&self) -> impl Iterator<Item = &Bridge> {
        self.bridges.values()
    }

    /// Bridges in the brewery, usable or not.
    pub fn len(&self) -> usize {
        self.bridges.len()
    }

    /// No bridge is in the brewery.
    pub fn is_empty(&self) -> bool {
        self.bridges.is_empty()
    }

    /// Bridges usable now.
    pub fn operational_count(&self, now: Instant) -> usize {
        self.bridges.values().filter(|b| b.is_operational(now)).count()
    }

    /// A presence from the brewery room (`brewery/<nick>`).
    pub fn on_presence(&mut self, p: &Element, own_nick: &str, now: Instant) -> Vec<BridgeEvent> {
        self.on_brewery_presence(&Presence::from_element(p), own_nick, now)
    }

    /// [`Bridges::on_presence`] on a typed presence (as the router has it).
    pub fn on_brewery_presence(&mut self, p: &Presence, own_nick: &str, now: Instant) -> Vec<BridgeEvent> {
        let Some(jid) = p.from_jid() else { return vec![] };
        if jid.resource().is_none() || jid.resource() == Some(own_nick) {
            return vec![];
        }
        if p.is_unavailable() {
            if self.bridges.remove(&jid).is_some() {
                info!("bridge {} left the brewery", jid);
                self.next_check.remove(&jid);
                return vec![BridgeEvent::Down(jid)];
            }
            return vec![];
        }
        if p.typ.is_some() {
            return vec![];
        }
        let Some(stats) = &p.stats else { return vec![] };
        let mut events = Vec::new();
        let is_new = !self.bridges.contains_key(&jid);
        let b = self.bridges.entry(jid.clone()).or_insert_with(|| Bridge::new(jid.clone()));
        let accepted_before = !is_new && b.accepts_new(now);
        let shutting_before = b.shutting_down;
        b.apply_stats(stats);
        if is_new {
            info!(
                "bridge {} joined the brewery (stress {:.2}, region {})",
                jid,
                b.stress,
                b.region.as_deref().unwrap_or("-")
            );
            self.next_check.insert(jid.clone(), now);
        }
        if b.shutting_down && !shutting_before {
            info!("bridge {} is shutting down", jid);
            events.push(BridgeEvent::Down(jid.clone()));
        } else if b.accepts_new(now) && !accepted_before {
            events.push(BridgeEvent::Up(jid.clone()));
        }
        events
    }

    /// Drop every bridge (the brewery was left, e.g. the connection was lost).
    pub fn clear(&mut self) -> Vec<BridgeEvent> {
        self.pending.clear();
        self.next_check.clear();
        self.bridges.drain().map(|(j, _)| BridgeEvent::Down(j)).collect()
    }

    /// Mark `jid` failed for [`FAILURE_RESET`].
    pub fn mark_failed(&mut self, jid: &Jid, now: Instant) -> Vec<BridgeEvent> {
        match self.bridges.get_mut(jid) {
            Some(b) => {
                let was = b.is_operational(now);
                b.failed_until = Some(now + FAILURE_RESET);
                if was {
                    warn!("bridge {} failed; out of selection for {} s", jid, FAILURE_RESET.as_secs());
                    vec![BridgeEvent::Down(jid.clone())]
                } else {
                    vec![]
                }
            }
            None => vec![],
        }
    }

    /// `jid` refused a new conference because it is shutting down gracefully (its
    /// presence will say so too): no new conferences on it meanwhile.
    pub fn mark_graceful(&mut self, jid: &Jid) {
        if let Some(b) = self.bridges.get_mut(jid) {
            b.graceful_shutdown = true;
        }
    }

    /// Count an endpoint just allocated on `jid` (stress ramp-up).
    pub fn endpoint_added(&mut self, jid: &Jid, now: Instant) {
        if let Some(b) = self.bridges.get_mut(jid) {
            b.recent.push_back(now);
            while b.recent.front().is_some_and(|t| now.duration_since(*t) >= RAMPUP) {
                b.recent.pop_front();
            }
        }
    }

    /// Pick a bridge. `current` is kept while it is operational; otherwise the least
    /// stressed bridge taking new conferences, in `region` if possible, overloaded
    /// bridges last; `exclude` are never picked.
    pub fn select(&self, now: Instant, current: Option<&Jid>, region: Option<&str>, exclude: &[Jid]) -> Option<Jid> {
        if let Some(c) = current {
            if self.bridges.get(c).is_some_and(|b| b.is_operational(now)) && !exclude.contains(c) {
                return Some(c.clone());
            }
        }
        let mut cands: Vec<&Bridge> =
            self.bridges.values().filter(|b| b.accepts_new(now) && !exclude.contains(&b.jid)).collect();
        cands.sort_by(|a, b| {
            let oa = a.effective_stress(now) >= STRESS_THRESHOLD;
            let ob = b.effective_stress(now) >= STRESS_THRESHOLD;
            let ra = region.is_some() && a.region.as_deref() == region;
            let rb = region.is_some() && b.region.as_deref() == region;
            oa.cmp(&ob)
                .then(rb.cmp(&ra))
                .then(a.effective_stress(now).total_cmp(&b.effective_stress(now)))
                .then(a.jid.cmp(&b.jid))
        });
        cands.first().map(|b| b.jid.clone())
    }

    /// Health checks due now (to send), and failures of unanswered ones. `new_id`
    /// enters a check to the given bridge (answered within [`HEALTH_TIMEOUT`]) and
    /// returns its id; `None` means it cannot be sent now (it is retried next interval).
    pub fn tick(&mut self, now: Instant, mut new_id: impl FnMut(&Jid) -> Option<String>) -> (Vec<Element>, Vec<BridgeEvent>) {
        let mut out = Vec::new();
        let mut events = Vec::new();
        // Unanswered checks: retry once, then fail.
        let expired: Vec<String> = self.pending.iter().filter(|(_, c)| now >= c.deadline).map(|(k, _)| k.clone()).collect();
        for id in expired {
            let Some(c) = self.pending.remove(&id) else { continue };
            if !self.bridges.contains_key(&c.bridge) {
                continue;
            }
            if c.retry {
                warn!("bridge {}: health check unanswered twice", c.bridge);
                events.extend(self.mark_failed(&c.bridge, now));
            } else if let Some(id) = new_id(&c.bridge) {
                out.push(health_check(&c.bridge, &id));
                self.pending.insert(id, HealthCheck { bridge: c.bridge, deadline: now + HEALTH_TIMEOUT, retry: true });
            }
        }
        let due: Vec<Jid> = self.next_check.iter().filter(|(_, t)| now >= **t).map(|(j, _)| j.clone()).collect();
        for jid in due {
            self.next_check.insert(jid.clone(), now + HEALTH_INTERVAL);
            if self.pending.values().any(|c| c.bridge == jid) {
                continue;
            }
            let Some(id) = new_id(&jid) else { continue };
            out.push(health_check(&jid, &id));
            self.pending.insert(id, HealthCheck { bridge: jid, deadline: now + HEALTH_TIMEOUT, retry: false });
        }
        (out, events)
    }

    /// The earliest instant `tick` has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|c| c.deadline).chain(self.next_check.values().copied()).min()
    }

    /// Health checks waiting for an answer.
    pub fn checks_outstanding(&self) -> usize {
        self.pending.len()
    }

    /// The answer to a health check; only the bridge it went to may answer it.
    pub fn on_health_answer(&mut self, iq: &Element, now: Instant) -> Vec<BridgeEvent> {
        self.on_health_reply(&Incoming::from_element(iq.clone()), now)
    }

    /// [`Bridges::on_health_answer`] on a classified answer (as the router has it).
    pub fn on_health_reply(&mut self, iq: &Incoming, now: Instant) -> Vec<BridgeEvent> {
        let Some(id) = iq.get_attr("id") else { return vec![] };
        let from = iq.get_attr("from").and_then(|f| Jid::parse(f).ok());
        if self.pending.get(id).is_none_or(|c| from.as_ref() != Some(&c.bridge)) {
            return vec![];
        }
        let Some(c) = self.pending.remove(id) else { return vec![] };
        if iq.get_attr("type") == Some("result") {
            return vec![];
        }
        let cond = iq.stanza_error().map(|e| e.condition_name).unwrap_or_default();
        match cond.as_str() {
            "internal-server-error" | "service-unavailable" => {
                warn!("bridge {}: health check failed ({})", c.bridge, cond);
                self.mark_failed(&c.bridge, now)
            }
            other => {
                warn!("bridge {}: health check answered with {}", c.bridge, other);
                vec![]
            }
        }
    }
}

fn health_check(bridge: &Jid, id: &str) -> Element {
    Element::new("iq", ns::CLIENT)
        .attr("type", "get")
        .attr("id", id)
        .attr("to", bridge.to_string())
        .child(Element::new("healthcheck", ns::HEALTHCHECK))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(nick: &str, stats: &[(&str, &str)]) -> Element {
        let mut s = Element::new("stats", ns::COLIBRI);
        for (k, v) in stats {
            s = s.child(Element::new("stat", ns::COLIBRI).attr("name", *k).attr("value", *v));
        }
        Element::new("presence", ns::CLIENT).attr("from", format!("jvbbrewery@internal.auth.meet.test/{}", nick)).child(s)
    }

    fn jid(nick: &str) -> Jid {
        Jid::parse(&format!("jvbbrewery@internal.auth.meet.test/{}", nick)).unwrap()
    }

    fn ok(stress: &str) -> Vec<(&'static str, String)> {
        vec![("stress_level", stress.to_string()), ("drain", "false".into())]
    }

    fn add(b: &mut Bridges, nick: &str, stats: Vec<(&'static str, String)>, now: Instant) -> Vec<BridgeEvent> {
        let st: Vec<(&str, &str)> = stats.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.on_presence(&presence(nick, &st), "focus", now)
    }

    #[test]
    fn least_stressed_then_region_then_overloaded_last() {
        let now = Instant::now();
        let mut b = Bridges::new();
        assert_eq!(add(&mut b, "jvb1", ok("0.6"), now), vec![BridgeEvent::Up(jid("jvb1"))]);
        add(&mut b, "jvb2", ok("0.1"), now);
        assert_eq!(b.select(now, None, None, &[]), Some(jid("jvb2")));
        let mut r = ok("0.5");
        r.push(("region", "eu".into()));
        add(&mut b, "jvb3", r, now);
        assert_eq!(b.select(now, None, Some("eu"), &[]), Some(jid("jvb3")));
        add(&mut b, "jvb2", ok("0.9"), now);
        add(&mut b, "jvb3", ok("0.85"), now);
        add(&mut b, "jvb1", ok("0.95"), now);
        assert_eq!(b.select(now, None, Some("eu"), &[]), Some(jid("jvb3")), "overloaded only when nothing else");
        // A conference keeps its bridge while usable.
        assert_eq!(b.select(now, Some(&jid("jvb1")), None, &[]), Some(jid("jvb1")));
    }

    #[test]
    fn draining_and_shutting_down_take_no_new_conferences() {
        let now = Instant::now();
        let mut b = Bridges::new();
        add(&mut b, "jvb1", vec![("stress_level", "0.1".into()), ("drain", "true".into())], now);
        assert_eq!(b.select(now, None, None, &[]), None);
        add(&mut b, "jvb2", ok("0.7"), now);
        assert_eq!(b.select(now, None, None, &[]), Some(jid("jvb2")));
        let ev = add(&mut b, "jvb2", vec![("stress_level", "0.7".into()), ("shutting_down", "true".into())], now);
        assert_eq!(ev, vec![BridgeEvent::Down(jid("jvb2"))]);
        assert_eq!(b.select(now, Some(&jid("jvb2")), None, &[]), None);
        // A bridge without a drain stat counts as draining.
        add(&mut b, "jvb3", vec![("stress_level", "0.1".into())], now);
        assert_eq!(b.select(now, None, None, &[]), None);
    }

    #[test]
    fn health_checks_fail_after_a_retry_and_reset_after_a_minute() {
        let t0 = Instant::now();
        let mut b = Bridges::new();
        add(&mut b, "jvb1", ok("0.1"), t0);
        let mut n = 0;
        let mut id = |_: &Jid| {
            n += 1;
            Some(format!("h{}", n))
        };
        let (out, ev) = b.tick(t0, &mut id);
        assert_eq!(out.len(), 1);
        assert!(ev.is_empty());
        assert!(out[0].get_child("healthcheck", ns::HEALTHCHECK).is_some());
        let (out, _) = b.tick(t0 + HEALTH_TIMEOUT, &mut id);
        assert_eq!(out.len(), 1, "one retry");
        let (_, ev) = b.tick(t0 + HEALTH_TIMEOUT * 2, &mut id);
        assert_eq!(ev, vec![BridgeEvent::Down(jid("jvb1"))]);
        assert_eq!(b.select(t0 + HEALTH_TIMEOUT * 2, None, None, &[]), None);
        assert!(b.select(t0 + HEALTH_TIMEOUT * 2 + FAILURE_RESET, None, None, &[]).is_some());
    }

    #[test]
    fn an_error_answer_fails_the_bridge_and_leaving_drops_it() {
        let t0 = Instant::now();
        let mut b = Bridges::new();
        add(&mut b, "jvb1", ok("0.1"), t0);
        let (out, _) = b.tick(t0, |_| Some("h1".to_string()));
        let err = crate::xmpp::stanza::iq_error(
            &out[0].clone().attr("from", "focus@auth.meet.test/focus"),
            crate::xmpp::stanza::ErrorCondition::InternalServerError,
            None,
        );
        // Only the bridge itself may answer its health check.
        let mut forged = err.clone();
        forged.set_attr("from", "jvbbrewery@internal.auth.meet.test/mallory");
        assert_eq!(b.on_health_answer(&forged, t0), vec![]);
        assert_eq!(b.checks_outstanding(), 1, "the forgery did not consume the check");
        assert_eq!(b.on_health_answer(&err, t0), vec![BridgeEvent::Down(jid("jvb1"))]);
        let leave = Element::new("presence", ns::CLIENT)
            .attr("from", "jvbbrewery@internal.auth.meet.test/jvb1")
            .attr("type", "unavailable");
        assert_eq!(b.on_presence(&leave, "focus", t0), vec![BridgeEvent::Down(jid("jvb1"))]);
        assert!(b.is_empty());
    }
}
