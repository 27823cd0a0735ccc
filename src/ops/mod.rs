//! Operations, above the focus: what the HTTP API answers ([`api`]: health, version,
//! stats, metrics and the conference request, as typed requests and answers served by
//! the generic server of `net::http`), the `/stats` and `/metrics` rendering
//! ([`metrics`]) and the deployment doctor `--check` ([`check`]).

pub mod api;
pub mod check;
pub mod metrics;
