//! The front ends around the one handler: [`http`] (hyper) and [`fastcgi`], both through
//! the [`dispatch`]er (quick path, admission control, the worker pool, the request log),
//! and the process [`lifecycle`] (graceful stop, SIGHUP).

pub mod dispatch;
pub mod fastcgi;
pub mod http;
pub mod lifecycle;
