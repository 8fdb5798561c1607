//! Bytes of an object in an S3-compatible store or on an HTTP(S) server, read with ranged
//! GETs through the shared [`BlockCache`]: a read takes the blocks it covers from the
//! cache and fetches the missing ones with one ranged GET (the run from the first missing
//! block to the last), so TIFF directories and JPEG2000 headers cost a few requests once
//! and a tile costs one. [`ByteSource::prefetch`] fetches the blocks of many ranges at
//! once (a region's tiles), adjacent runs coalesced by `object_store`.
//!
//! Every GET carries the ETag seen when the object was opened (If-Match), so a replaced
//! object fails the read instead of mixing old and new bytes.

use super::blocks::BlockCache;
use bytes::Bytes;
use iipsrv_formats::bytes::{check_within, ByteSource};
use iipsrv_formats::error::{SourceError, SourceResult};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use std::ops::Range;
use std::sync::Arc;
use tokio::runtime::Handle;

/// Where an object is and what it was when opened.
#[derive(Clone)]
pub struct ObjectAt {
    /// The store holding it.
    pub store: Arc<dyn ObjectStore>,
    /// Its key in the store.
    pub path: Path,
    /// Its length in bytes.
    pub len: u64,
    /// Its ETag, when the store gives one.
    pub e_tag: Option<String>,
    /// Its identity for the block cache: URL and ETag (or modification time) hashed.
    pub version: u64,
}

/// Runs of missing blocks closer than this are fetched as one request.
const COALESCE_BYTES: u64 = 256 * 1024;

/// An object read in blocks through a cache, on the object runtime `runtime`.
pub struct RemoteBytes {
    object: ObjectAt,
    blocks: Arc<BlockCache>,
    runtime: Handle,
}

impl RemoteBytes {
    /// The bytes of `object`, blocks kept in `blocks`, requests run on `runtime`.
    pub fn new(object: ObjectAt, blocks: Arc<BlockCache>, runtime: Handle) -> RemoteBytes {
        RemoteBytes {
            object,
            blocks,
            runtime,
        }
    }

    /// The byte range of blocks `first..=last`, clipped to the object.
    fn span(&self, first: u64, last: u64) -> Range<u64> {
        let size = self.blocks.block_size();
        first * size..((last + 1) * size).min(self.object.len)
    }

    /// Fetches the byte ranges `ranges` (block-aligned), one ranged GET each, all at
    /// once, and keeps their blocks; the blocks of each range, in order.
    fn fetch(&self, ranges: Vec<Range<u64>>) -> SourceResult<Vec<Vec<Bytes>>> {
        let object = self.object.clone();
        let wanted = ranges.clone();
        let got = run(&self.runtime, async move {
            let mut requests = tokio::task::JoinSet::new();
            for (i, range) in wanted.into_iter().enumerate() {
                let object = object.clone();
                crate::telemetry::object_request("get");
                requests.spawn(async move {
                    let options = GetOptions::new()
                        .with_range(Some(GetRange::Bounded(range)))
                        .with_if_match(object.e_tag.clone());
                    let got = object.store.get_opts(&object.path, options).await?;
                    got.bytes().await.map(|b| (i, b))
                });
            }
            let mut got = Vec::new();
            while let Some(done) = requests.join_next().await {
                match done {
                    Ok(r) => got.push(r?),
                    Err(e) => {
                        return Err(object_store::Error::Generic {
                            store: "object runtime",
                            source: Box::new(e),
                        })
                    }
                }
            }
            got.sort_unstable_by_key(|(i, _)| *i);
            Ok(got.into_iter().map(|(_, b)| b).collect::<Vec<Bytes>>())
        })?
        .map_err(remote_error)?;
        let size = self.blocks.block_size();
        let mut blocks = Vec::with_capacity(got.len());
        for (range, data) in ranges.iter().zip(&got) {
            if data.len() as u64 != range.end - range.start {
                return Err(SourceError::remote(format!(
                    "the object store sent {} bytes for a range of {}",
                    data.len(),
                    range.end - range.start
                )));
            }
            let split: Vec<Bytes> = data
                .chunks(size as usize)
                .map(|chunk| data.slice_ref(chunk))
                .collect();
            for (i, block) in split.iter().enumerate() {
                let index = range.start / size + i as u64;
                self.blocks
                    .insert((self.object.version, index), block.clone());
            }
            blocks.push(split);
        }
        Ok(blocks)
    }

    /// The blocks of `ranges` (offset, length) that the cache does not hold, as runs of
    /// block indices, runs less than [`COALESCE_BYTES`] apart joined (one request costs
    /// more than the bytes between).
    fn missing_runs(&self, ranges: &[(u64, usize)]) -> Vec<(u64, u64)> {
        let size = self.blocks.block_size();
        let mut wanted: Vec<u64> = ranges
            .iter()
            .filter(|(_, len)| *len > 0)
            .flat_map(|&(offset, len)| offset / size..=(offset + len as u64 - 1) / size)
            .filter(|&b| !self.blocks.contains(&(self.object.version, b)))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let gap = (COALESCE_BYTES / size).max(1);
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for b in wanted {
            match runs.last_mut() {
                Some((_, last)) if b - *last <= gap => *last = b,
                _ => runs.push((b, b)),
            }
        }
        runs
    }
}

impl ByteSource for RemoteBytes {
    fn len(&self) -> u64 {
        self.object.len
    }

    fn read_at(&self, offset: u64, len: usize) -> SourceResult<Vec<u8>> {
        check_within(offset, len, self.object.len, "object")?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let size = self.blocks.block_size();
        let (first, last) = (offset / size, (offset + len as u64 - 1) / size);
        let mut held: Vec<Option<Bytes>> = (first..=last)
            .map(|b| self.blocks.get(&(self.object.version, b)))
            .collect();
        let missing: Vec<usize> = (0..held.len()).filter(|&i| held[i].is_none()).collect();
        if let (Some(&a), Some(&b)) = (missing.first(), missing.last()) {
            // One request from the first missing block to the last, whatever is between.
            let range = self.span(first + a as u64, first + b as u64);
            let fetched = self.fetch(vec![range])?.into_iter().flatten();
            for (slot, block) in held[a..].iter_mut().zip(fetched) {
                *slot = Some(block);
            }
        }
        let mut out = Vec::with_capacity(len);
        let mut at = offset;
        for (i, block) in held.into_iter().enumerate() {
            let block = block.ok_or_else(|| SourceError::remote("a block went missing"))?;
            let start = (at - (first + i as u64) * size) as usize;
            let take = (len - out.len()).min(block.len().saturating_sub(start));
            out.extend_from_slice(block.get(start..start + take).unwrap_or_default());
            at += take as u64;
        }
        if out.len() != len {
            return Err(SourceError::remote("the object is shorter than it said"));
        }
        Ok(out)
    }

    fn prefetch(&self, ranges: &[(u64, usize)]) -> SourceResult<()> {
        let runs = self.missing_runs(ranges);
        if runs.is_empty() {
            return Ok(());
        }
        let spans = runs.iter().map(|&(a, b)| self.span(a, b)).collect();
        self.fetch(spans).map(|_| ())
    }

    fn is_remote(&self) -> bool {
        true
    }
}

/// Runs `work` on the object runtime and waits for it (from any thread, async or not).
pub fn run<T: Send + 'static>(
    runtime: &Handle,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> SourceResult<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv()
        .map_err(|_| SourceError::remote("the object-store runtime stopped"))
}

/// An object-store failure as a source error: the store, not the file, is at fault.
pub(crate) fn remote_error(e: object_store::Error) -> SourceError {
    match e {
        object_store::Error::Precondition { .. } => {
            SourceError::remote("the object changed while it was read; retry")
        }
        e => SourceError::remote(one_line(&chain(&e))),
    }
}

/// An error and its causes, joined (a store's "HTTP error" says little alone).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// The first line of a message, at most 300 characters (store errors can be long).
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}
