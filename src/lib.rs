//! iipsrv — the IIPImage image server in Rust.
//!
//! Data flows one way: request → protocol parser → [`view::View`] → image source tiles →
//! [`pipeline`] → encoder → response. Layers, from the bottom:
//! - pure, no I/O: [`view`], [`raster`], [`ops`], [`protocol`];
//! - formats: [`codec`] (tile compressions and output encoders), [`source`] (image readers);
//! - server: [`config`], [`registry`], [`cache`], [`pipeline`], [`handler`], and the front
//!   ends [`http`] and [`fastcgi`] around [`dispatch`].

pub mod cache;
pub mod check;
pub mod codec;
pub mod colour;
pub mod config;
pub mod convert;
pub mod demo;
pub mod dispatch;
pub mod error;
pub mod fastcgi;
pub mod forwarded;
pub mod handler;
pub mod http;
pub mod lifecycle;
pub mod logging;
pub mod objects;
pub mod ops;
pub mod pipeline;
pub mod process;
pub mod protocol;
pub mod raster;
pub mod registry;
pub mod sequence;
pub mod source;
pub mod telemetry;
pub mod tier;
pub mod view;
pub mod watermark;
