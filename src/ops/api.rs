//! The focus's HTTP API, served by the generic server of `net::http`: health, version,
//! stats, Prometheus metrics and the conference request (focus.md §7).
//!
//! [`route`] turns a request into what it asks for: an answer known at once, an
//! operations request ([`Ops`], answered on the server's workers from the shared
//! counters and bridges) or a typed conference request ([`RequestFields`], read from the
//! JSON body). The conference request goes to the router over the control channel
//! (`Control::Http`), which serves it like the XMPP request and answers a typed
//! [`ConferenceAnswer`]; its HTTP status comes from the variant ([`conference_response`]):
//! `200` for the `<conference>` result, `403` for `not-authorized`, `400` for an invalid
//! session and any other error, `503` with `Retry-After` for a limit
//! ([`Refusal`](crate::messages::Refusal)).

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::bridge::Bridges;
use crate::messages::{ConferenceAnswer, Control};
use crate::metrics::Metrics;
use crate::net::http::{Handler, Request, Response, Route};
use crate::net::NetHandle;
use crate::xmpp::conference_iq::RequestFields;

/// What the API reads and where it sends conference requests.
#[derive(Clone)]
pub struct Api {
    /// The process counters.
    pub metrics: Arc<Metrics>,
    /// The bridges of the brewery.
    pub bridges: Arc<Mutex<Bridges>>,
    /// The router's control channel.
    pub control: Sender<Control>,
    /// Wakes the event loop (the router reads `control` there).
    pub net: NetHandle,
}

/// The operations endpoints answered by the worker pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ops {
    /// `GET /about/health`: 200 `{"healthy": true}`, or 500 with the problems.
    Health,
    /// `GET /stats`: the JSON statistics.
    Stats,
    /// `GET /metrics`: the Prometheus text format.
    Metrics,
}

/// Decide what a request is (pure).
pub fn route(req: &Request) -> Route<Ops, RequestFields> {
    match (req.path.as_str(), req.method.as_str()) {
        ("/about/health", "GET") => Route::Work(Ops::Health),
        ("/stats", "GET") => Route::Work(Ops::Stats),
        ("/metrics", "GET") => Route::Work(Ops::Metrics),
        ("/about/version", "GET") => Route::Done(Response::json(
            200,
            &json!({"name": "JiCoFo", "version": env!("CARGO_PKG_VERSION"), "os": std::env::consts::OS}),
        )),
        ("/conference-request/v1", "OPTIONS") => Route::Done(Response::text(200, "", "text/plain")),
        ("/conference-request/v1", "POST") => match conference_request(&req.body) {
            Ok(fields) => Route::Wait(fields),
            Err(r) => Route::Done(r),
        },
        ("/about/health" | "/about/version" | "/stats" | "/metrics" | "/conference-request/v1", _) => {
            Route::Done(Response::error(405, "method not allowed"))
        }
        _ => Route::Done(Response::error(404, "not found")),
    }
}

/// Answer an operations request from the shared state.
pub fn ops_response(ops: Ops, api: &Api, now: Instant) -> Response {
    match ops {
        Ops::Health => {
            let problems = api.metrics.health_problems(&api.bridges.lock(), now);
            if problems.is_empty() {
                Response::json(200, &json!({"healthy": true}))
            } else {
                Response::json(500, &json!({"healthy": false, "problems": problems}))
            }
        }
        Ops::Stats => Response::json(200, &api.metrics.stats_json(&api.bridges.lock(), now)),
        Ops::Metrics => {
            Response::text(200, &api.metrics.prometheus(&api.bridges.lock(), now), "text/plain; version=0.0.4")
        }
    }
}

/// The conference request of a JSON body: `room` (required), `sessionId`, `machineUid`,
/// `properties` (values that are not strings are taken as their JSON text).
pub fn conference_request(body: &[u8]) -> Result<RequestFields, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Response::error(400, &format!("invalid JSON: {}", e)))?;
    let Some(room) = v.get("room").and_then(Value::as_str) else {
        return Err(Response::error(400, "No 'room' specified."));
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let properties = v
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(k, val)| {
                    let text = match val {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(RequestFields { room: room.to_string(), session_id: text("sessionId"), machine_uid: text("machineUid"), properties })
}

/// The HTTP answer for the router's answer to a conference request.
pub fn conference_response(answer: &ConferenceAnswer) -> Response {
    match answer {
        ConferenceAnswer::Reply(c) => {
            let mut out = Map::new();
            out.insert("room".into(), json!(c.room));
            out.insert("ready".into(), json!(c.ready));
            out.insert("focusJid".into(), json!(c.focus_jid));
            if let Some(s) = &c.session_id {
                out.insert("sessionId".into(), json!(s));
            }
            if let Some(s) = &c.identity {
                out.insert("identity".into(), json!(s));
            }
            let mut props = Map::new();
            for (k, v) in &c.properties {
                props.insert(k.clone(), json!(v));
            }
            out.insert("properties".into(), Value::Object(props));
            Response::json(200, &Value::Object(out))
        }
        ConferenceAnswer::NotAuthorized(text) => Response::error(403, text),
        ConferenceAnswer::SessionInvalid => Response::error(400, "invalid-session"),
        ConferenceAnswer::Refused(why) => Response::error(503, why.text()).retry_after(why.retry_after()),
        ConferenceAnswer::BadRequest(text) | ConferenceAnswer::NotAcceptable(text) => Response::error(400, text),
        ConferenceAnswer::ShuttingDown => Response::error(400, "service-unavailable"),
    }
}

impl Handler for Api {
    type Work = Ops;
    type Wait = RequestFields;
    type Answer = ConferenceAnswer;

    fn route(&self, req: &Request) -> Route<Ops, RequestFields> {
        route(req)
    }

    fn work(&self, ops: Ops) -> Response {
        ops_response(ops, self, Instant::now())
    }

    fn begin(&self, request: RequestFields) -> Result<Receiver<ConferenceAnswer>, Response> {
        let (reply, rx) = bounded(1);
        if self.control.send(Control::Http { request, reply }).is_err() {
            return Err(Response::error(503, "shutting down"));
        }
        self.net.wake();
        Ok(rx)
    }

    fn finish(&self, answer: Option<ConferenceAnswer>) -> Response {
        match answer {
            Some(a) => conference_response(&a),
            None => Response::error(500, "no answer from the conference"),
        }
    }

    fn too_many_waiting(&self) -> Response {
        Response::error(503, "too many conference requests waiting, try again")
    }
}

#[cfg(test)]
mod tests;
