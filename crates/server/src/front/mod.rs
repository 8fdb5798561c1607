//! The front ends around the one handler: [`http`] (hyper) and [`fastcgi`], both through
//! the [`dispatch`]er (quick path, admission control, the worker pool, the request log),
//! the process [`lifecycle`] (graceful stop, SIGHUP), the [`priority`] of the threads
//! that render, below the connection threads, and the malloc [`arenas`] they share.

pub mod arenas;
pub mod dispatch;
pub mod fastcgi;
pub mod http;
pub mod lifecycle;
pub mod priority;
