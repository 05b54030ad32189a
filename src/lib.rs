//! banlight: a desk appliance that lights up when fail2ban bans someone.

pub mod admin;
pub mod cli;
pub mod clockwake;
pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
pub mod engine;
pub mod heartbeat_hook;
pub mod heartbeats;
pub mod hook;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod mqtt;
pub mod notify;
pub mod panel;
pub mod quiet_gate;
pub mod request;
pub mod selftest;
pub mod slots;
pub mod statelock;
pub mod store;
pub mod tls;
pub mod web;
