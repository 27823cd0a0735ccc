//! The HTTP API server (tiny_http, one thread; it lives in `net` because it owns a
//! listening socket): health, version, stats, Prometheus metrics
//! and the conference request over HTTP (focus.md §7).
//!
//! Conference requests are turned into the same `<conference>` IQ the XMPP path
//! handles and given to the router over its control channel with a reply channel;
//! this thread waits for the answer (30 s at most) and renders it as JSON.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use log::{info, warn};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::bridge::Bridges;
use crate::conference::env::Control;
use crate::metrics::Metrics;
use crate::net::NetHandle;
use crate::xml::{ns, Element};

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

/// What the API reads and where it sends conference requests.
#[derive(Clone)]
pub struct Api {
    pub metrics: Arc<Metrics>,
    pub bridges: Arc<Mutex<Bridges>>,
    pub control: Sender<Control>,
    pub net: NetHandle,
    pub focus_jid: String,
}

/// A running HTTP server.
pub struct RestServer {
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl RestServer {
    /// Bind `addr` and serve on a new thread.
    pub fn start(addr: SocketAddr, api: Api) -> Result<RestServer, String> {
        let server = Arc::new(Server::http(addr).map_err(|e| format!("cannot listen on {} (--rest_port/--rest_bind): {}", addr, e))?);
        let bound = server.server_addr().to_ip().unwrap_or(addr);
        info!("HTTP API on http://{}", bound);
        let s = server.clone();
        let thread = std::thread::Builder::new()
            .name("rest".into())
            .spawn(move || {
                for req in s.incoming_requests() {
                    handle(req, &api);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(RestServer { server, thread: Some(thread), addr: bound })
    }

    /// Stop serving and join the thread.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn json_response(code: u16, v: &Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(v.to_string().into_bytes())
        .with_status_code(code)
        .with_header(Header::from_bytes("Content-Type", "application/json").unwrap())
}

fn text_response(code: u16, text: &str, ctype: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(text.as_bytes().to_vec())
        .with_status_code(code)
        .with_header(Header::from_bytes("Content-Type", ctype).unwrap())
}

fn handle(mut req: Request, api: &Api) {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    let method = req.method().clone();
    let now = Instant::now();
    let resp = match (path.as_str(), &method) {
        ("/about/health", Method::Get) => {
            let mut problems = Vec::new();
            if !api.metrics.component_up.load(Ordering::Relaxed) {
                problems.push("the component connection is down");
            }
            if !api.metrics.client_up.load(Ordering::Relaxed) {
                problems.push("the client connection is down");
            }
            if api.bridges.lock().operational_count(now) == 0 {
                problems.push("no operational bridge");
            }
            if problems.is_empty() {
                json_response(200, &json!({"healthy": true}))
            } else {
                json_response(500, &json!({"healthy": false, "problems": problems}))
            }
        }
        ("/about/version", Method::Get) => json_response(
            200,
            &json!({"name": "JiCoFo", "version": env!("CARGO_PKG_VERSION"), "os": std::env::consts::OS}),
        ),
        ("/stats", Method::Get) => {
            let v = api.metrics.stats_json(&api.bridges.lock(), now);
            json_response(200, &v)
        }
        ("/metrics", Method::Get) => {
            let t = api.metrics.prometheus(&api.bridges.lock(), now);
            text_response(200, &t, "text/plain; version=0.0.4")
        }
        ("/conference-request/v1", Method::Options) => text_response(200, "", "text/plain"),
        ("/conference-request/v1", Method::Post) => conference_request(&mut req, api),
        ("/about/health" | "/about/version" | "/stats" | "/metrics" | "/conference-request/v1", _) => {
            json_response(405, &json!({"error": "method not allowed"}))
        }
        _ => json_response(404, &json!({"error": "not found"})),
    };
    if let Err(e) = req.respond(resp) {
        warn!("HTTP: cannot answer: {}", e);
    }
}

fn conference_request(req: &mut Request, api: &Api) -> Response<std::io::Cursor<Vec<u8>>> {
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return json_response(413, &json!({"error": "body too large"}));
    }
    let mut body = Vec::new();
    if req.as_reader().take(MAX_BODY as u64 + 1).read_to_end(&mut body).is_err() {
        return json_response(400, &json!({"error": "cannot read the body"}));
    }
    if body.len() > MAX_BODY {
        return json_response(413, &json!({"error": "body too large"}));
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return json_response(400, &json!({"error": format!("invalid JSON: {}", e)})),
    };
    let Some(room) = v.get("room").and_then(Value::as_str) else {
        return json_response(400, &json!({"error": "No 'room' specified."}));
    };
    let mut conf = Element::new("conference", ns::FOCUS).attr("room", room);
    if let Some(s) = v.get("sessionId").and_then(Value::as_str) {
        conf.set_attr("session-id", s);
    }
    if let Some(m) = v.get("machineUid").and_then(Value::as_str) {
        conf.set_attr("machine-uid", m);
    }
    if let Some(props) = v.get("properties").and_then(Value::as_object) {
        for (k, val) in props {
            let text = match val {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            conf = conf.child(Element::new("property", ns::FOCUS).attr("name", k.clone()).attr("value", text));
        }
    }
    let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", "http").child(conf);
    let (tx, rx) = bounded(1);
    if api.control.send(Control::Http { iq, reply: tx }).is_err() {
        return json_response(503, &json!({"error": "shutting down"}));
    }
    api.net.wake();
    let answer = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(a) => a,
        Err(_) => return json_response(500, &json!({"error": "no answer from the conference"})),
    };
    if answer.get_attr("type") == Some("error") {
        let err = crate::xmpp::stanza::parse_error(&answer);
        let cond = err.as_ref().map(|e| e.condition_name.clone()).unwrap_or_default();
        let text = err.as_ref().and_then(|e| e.text.clone()).unwrap_or_else(|| cond.clone());
        return match cond.as_str() {
            "not-authorized" => json_response(403, &json!({"error": text})),
            "not-acceptable" if err.as_ref().is_some_and(|e| e.extra.iter().any(|x| x.name == "session-invalid")) => {
                json_response(400, &json!({"error": "invalid-session"}))
            }
            _ => json_response(400, &json!({"error": text})),
        };
    }
    let Some(c) = answer.get_child("conference", ns::FOCUS) else {
        return json_response(500, &json!({"error": "malformed answer"}));
    };
    let mut out = Map::new();
    out.insert("room".into(), json!(c.get_attr("room").unwrap_or(room)));
    out.insert("ready".into(), json!(c.get_attr("ready") == Some("true")));
    out.insert("focusJid".into(), json!(c.get_attr("focusjid").unwrap_or(&api.focus_jid)));
    if let Some(s) = c.get_attr("session-id") {
        out.insert("sessionId".into(), json!(s));
    }
    if let Some(s) = c.get_attr("identity") {
        out.insert("identity".into(), json!(s));
    }
    let mut props = Map::new();
    for p in c.children_named("property", ns::FOCUS) {
        if let (Some(k), Some(v)) = (p.get_attr("name"), p.get_attr("value")) {
            props.insert(k.to_string(), json!(v));
        }
    }
    out.insert("properties".into(), Value::Object(props));
    json_response(200, &Value::Object(out))
}
