//! The iipsrv server: everything between a request on a socket and the pixels a format
//! crate hands out.
//!
//! Data flows one way: a front end ([`front`]: HTTP, FastCGI) turns bytes into a plain
//! [`handler::Request`]; the [`handler`] routes it to a protocol parser of `iipsrv-core`,
//! which yields a `View`; [`storage`] opens the image (registry, caches, shared tier,
//! object stores); [`render`] turns view and source into encoded bytes; the handler makes
//! the [`handler::Response`]. Errors of every layer meet HTTP in one place ([`error`]).
//!
//! Modules, from the bottom: [`error`], `telemetry`, [`logging`], [`forwarded`],
//! [`access`] (the access policy and its checks), [`render`], [`settings`] (typed configuration), [`storage`], [`demo`], [`handler`],
//! [`front`]. Each imports only modules before it in that list
//! (`scripts/module-graph.py --check` keeps them free of cycles). This crate must not be imported by the lower
//! crates; the binary crate `iipsrv` wires it up.

pub mod access;
pub mod demo;
pub mod error;
pub mod forwarded;
pub mod front;
pub mod handler;
pub mod logging;
pub mod render;
pub mod settings;
pub mod storage;
pub(crate) mod telemetry;
