//! Redis (or Valkey) as the shared tier's engine (REDIS_URL, e.g. `redis://cache:6379/0`),
//! through a small pool of connections with short timeouts.

use super::{Backend, TIMEOUT};
use crate::error::{Error, Result};

/// A pool of Redis connections, each with read and write timeouts.
pub struct Redis {
    pool: r2d2::Pool<redis::Client>,
}

/// Gives every pooled connection the tier's timeouts, so a stalled Redis cannot hold a
/// request.
#[derive(Debug)]
struct Timeouts;

impl r2d2::CustomizeConnection<redis::Connection, redis::RedisError> for Timeouts {
    fn on_acquire(
        &self,
        conn: &mut redis::Connection,
    ) -> std::result::Result<(), redis::RedisError> {
        conn.set_read_timeout(Some(TIMEOUT))?;
        conn.set_write_timeout(Some(TIMEOUT))
    }
}

impl Redis {
    /// A pool for REDIS_URL; connections are made on first use.
    pub fn new(url: &str) -> Result<Redis> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::bad(format!("REDIS_URL is not usable: {e}")))?;
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(0))
            .connection_timeout(TIMEOUT)
            .test_on_check_out(false)
            .connection_customizer(Box::new(Timeouts))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(client);
        Ok(Redis { pool })
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> std::result::Result<T, String> {
        let mut conn = self.pool.get().map_err(|e| e.to_string())?;
        cmd.query(&mut *conn).map_err(|e| e.to_string())
    }
}

impl Backend for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn get(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        self.query(redis::cmd("GET").arg(key))
    }

    fn set(&self, key: &str, value: &[u8], expiry: u32) -> std::result::Result<(), String> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if expiry > 0 {
            cmd.arg("EX").arg(expiry);
        }
        self.query(&cmd)
    }

    fn incr(&self, key: &str) -> std::result::Result<u64, String> {
        self.query(redis::cmd("INCR").arg(key))
    }

    fn delete(&self, key: &str) -> std::result::Result<(), String> {
        self.query::<u64>(redis::cmd("DEL").arg(key)).map(|_| ())
    }

    fn reset(&self) {
        // r2d2 drops a connection whose command failed when it is next checked; nothing
        // to hold here.
    }
}
