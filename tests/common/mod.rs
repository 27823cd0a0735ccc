//! Shared helpers for integration tests (each test binary declares `mod common;`).
#![allow(dead_code)]

pub mod prosody;
pub mod client;
pub mod deploy;
pub mod sim;
pub mod gateways;
