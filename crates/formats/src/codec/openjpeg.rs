//! JPEG2000 decoding through OpenJPEG 2.5 (bundled by `openjpeg-sys`; HTJ2K included): one
//! resolution (reduce), one area (decode area) and some quality layers of a codestream,
//! read from a [`ByteSource`] with positioned reads — never the whole file in memory.
//!
//! This is the one place with `unsafe` for JPEG2000: the OpenJPEG objects live in guards
//! that free them on every path, the stream callbacks only touch the reader they were
//! given, and OpenJPEG's error messages are collected into the error we return.
//!
//! Why not the `jpeg2k` crate: it reads files only through OpenJPEG's own file stream
//! (chosen by file extension) or from a slice of the whole file; we need reads through our
//! byte source (any extension, later object storage) without loading the file.

use crate::bytes::ByteSource;
use crate::error::SourceError;
use crate::error::SourceResult;
use openjpeg_sys as opj;
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};
use std::ptr;

/// Which container the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// A JP2 file (boxes around the codestream).
    Jp2,
    /// A raw codestream (.j2k, .j2c, .jph).
    Codestream,
}

/// What to decode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeRequest {
    /// Resolutions discarded: the output is 1/2^reduce of full size.
    pub reduce: u32,
    /// Quality layers decoded; 0 means all.
    pub layers: u32,
    /// Area on the reference grid (full-resolution coordinates, image offset included):
    /// left, top, right, bottom.
    pub area: (u32, u32, u32, u32),
    /// The largest image the header may declare, checked before anything is decoded: a
    /// codestream whose header we did not parse ourselves (a tile inside a TIFF) could
    /// otherwise claim gigapixels. `None` when the caller has checked the header.
    pub bounds: Option<Bounds>,
}

/// The most a codestream may hold: image size on the reference grid and components.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Widest image.
    pub width: u32,
    /// Tallest image.
    pub height: u32,
    /// Most components.
    pub components: u32,
}

/// One decoded component.
#[derive(Debug, Clone)]
pub(crate) struct Component {
    /// Width of the decoded area at the reduced resolution.
    pub width: u32,
    /// Height of the decoded area at the reduced resolution.
    pub height: u32,
    /// Samples, row by row.
    pub data: Vec<i32>,
}

impl Component {
    /// The `w`×`h` part starting at (`x`, `y`); `None` when it does not lie within.
    pub fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Option<Component> {
        if x as u64 + w as u64 > self.width as u64 || y as u64 + h as u64 > self.height as u64 {
            return None;
        }
        let (stride, w_px) = (self.width as usize, w as usize);
        let mut data = Vec::with_capacity(w_px * h as usize);
        for row in y as usize..(y + h) as usize {
            let start = row * stride + x as usize;
            data.extend_from_slice(self.data.get(start..start + w_px)?);
        }
        Some(Component {
            width: w,
            height: h,
            data,
        })
    }
}

/// Read position over a byte source: the user data of an OpenJPEG stream.
struct Reader<'a> {
    bytes: &'a dyn ByteSource,
    pos: u64,
}

/// OpenJPEG's "no bytes": `(OPJ_SIZE_T)-1`.
const STREAM_END: usize = usize::MAX;

/// Stream buffer size. Small, because OpenJPEG walks every tile-part header before the
/// tiles it needs and each step refills the buffer: on a 20000×15000 file of 1200 tiles a
/// 256-px tile took 27-42 ms with 64 KB, 8 ms with 4 KB (1 KB: no better).
const STREAM_BUFFER: usize = 4 * 1024;

unsafe extern "C" fn read_fn(buf: *mut c_void, n: usize, user: *mut c_void) -> usize {
    // SAFETY: `user` is the `Reader` we registered, alive for the whole decode; `buf` is
    // OpenJPEG's buffer of at least `n` bytes.
    let r = unsafe { &mut *(user as *mut Reader) };
    let left = r.bytes.len().saturating_sub(r.pos);
    let want = (n as u64).min(left) as usize;
    if want == 0 {
        return STREAM_END;
    }
    match r.bytes.read_at(r.pos, want) {
        Ok(data) if !data.is_empty() => {
            let got = data.len().min(want);
            // SAFETY: `got` ≤ `n` bytes fit in `buf`; the regions do not overlap.
            unsafe { ptr::copy_nonoverlapping(data.as_ptr(), buf as *mut u8, got) };
            r.pos += got as u64;
            got
        }
        _ => STREAM_END,
    }
}

unsafe extern "C" fn skip_fn(n: i64, user: *mut c_void) -> i64 {
    // SAFETY: as in `read_fn`.
    let r = unsafe { &mut *(user as *mut Reader) };
    let target = (r.pos as i64).saturating_add(n);
    if target < 0 || target as u64 > r.bytes.len() {
        return -1;
    }
    r.pos = target as u64;
    n
}

unsafe extern "C" fn seek_fn(pos: i64, user: *mut c_void) -> i32 {
    // SAFETY: as in `read_fn`.
    let r = unsafe { &mut *(user as *mut Reader) };
    if pos < 0 || pos as u64 > r.bytes.len() {
        return 0;
    }
    r.pos = pos as u64;
    1
}

/// OpenJPEG's error handler: keeps the first message in the `RefCell<String>` at `user`.
pub(super) unsafe extern "C" fn on_error(msg: *const c_char, user: *mut c_void) {
    if msg.is_null() || user.is_null() {
        return;
    }
    // SAFETY: `user` is the `RefCell<String>` of the running decode; `msg` is OpenJPEG's
    // NUL-terminated message.
    let (log, text) = unsafe { (&*(user as *const RefCell<String>), CStr::from_ptr(msg)) };
    if let Ok(mut log) = log.try_borrow_mut() {
        if log.is_empty() {
            log.push_str(text.to_string_lossy().trim());
        }
    }
}

/// OpenJPEG's handler of warnings and information: drops them.
pub(super) unsafe extern "C" fn ignore(_msg: *const c_char, _user: *mut c_void) {}

/// The OpenJPEG objects of one decode, freed in reverse order on drop.
struct Session {
    codec: *mut opj::opj_codec_t,
    stream: *mut opj::opj_stream_t,
    image: *mut opj::opj_image_t,
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or was created by OpenJPEG for this session and is
        // freed exactly once here.
        unsafe {
            if !self.image.is_null() {
                opj::opj_image_destroy(self.image);
            }
            if !self.stream.is_null() {
                opj::opj_stream_destroy(self.stream);
            }
            if !self.codec.is_null() {
                opj::opj_destroy_codec(self.codec);
            }
        }
    }
}

/// Decodes one area at one resolution. `bytes` is the whole file; errors carry OpenJPEG's
/// first message.
pub fn decode(
    bytes: &dyn ByteSource,
    container: Container,
    req: &DecodeRequest,
) -> SourceResult<Vec<Component>> {
    let messages = RefCell::new(String::new());
    let mut reader = Reader { bytes, pos: 0 };
    let fail = |what: &str| {
        let m = messages.borrow();
        let detail = if m.is_empty() { "" } else { m.as_str() };
        SourceError::corrupt(
            format!("JPEG2000: {what} failed {detail}")
                .trim()
                .to_string(),
        )
    };
    let format = match container {
        Container::Jp2 => opj::CODEC_FORMAT::OPJ_CODEC_JP2,
        Container::Codestream => opj::CODEC_FORMAT::OPJ_CODEC_J2K,
    };
    // SAFETY: plain constructor calls; null results are checked before use.
    let mut s = Session {
        codec: unsafe { opj::opj_create_decompress(format) },
        stream: unsafe { opj::opj_stream_create(STREAM_BUFFER, 1) },
        image: ptr::null_mut(),
    };
    if s.codec.is_null() || s.stream.is_null() {
        return Err(SourceError::decoder("JPEG2000: out of memory"));
    }
    let log = &messages as *const RefCell<String> as *mut c_void;
    // SAFETY: the codec and stream are valid; `messages` and `reader` outlive `s`, which
    // is dropped (freeing codec and stream) before this function returns.
    let ok = unsafe {
        opj::opj_set_error_handler(s.codec, Some(on_error), log);
        opj::opj_set_warning_handler(s.codec, Some(ignore), ptr::null_mut());
        opj::opj_set_info_handler(s.codec, Some(ignore), ptr::null_mut());
        let mut p: opj::opj_dparameters_t = std::mem::zeroed();
        opj::opj_set_default_decoder_parameters(&mut p);
        p.cp_reduce = req.reduce;
        p.cp_layer = req.layers;
        opj::opj_stream_set_read_function(s.stream, Some(read_fn));
        opj::opj_stream_set_skip_function(s.stream, Some(skip_fn));
        opj::opj_stream_set_seek_function(s.stream, Some(seek_fn));
        opj::opj_stream_set_user_data(s.stream, &mut reader as *mut Reader as *mut c_void, None);
        opj::opj_stream_set_user_data_length(s.stream, bytes.len());
        opj::opj_setup_decoder(s.codec, &mut p) == 1
    };
    if !ok {
        return Err(fail("decoder set-up"));
    }
    // SAFETY: valid stream and codec; OpenJPEG writes the image pointer it allocates.
    if unsafe { opj::opj_read_header(s.stream, s.codec, &mut s.image) } != 1 || s.image.is_null() {
        return Err(fail("reading the header"));
    }
    if let Some(bounds) = req.bounds {
        within(&s, bounds)?;
    }
    let (x0, y0, x1, y1) = req.area;
    // SAFETY: valid codec and image from this session; the area was checked by the caller
    // against the image; OpenJPEG checks it again.
    let decoded = unsafe {
        opj::opj_set_decoded_resolution_factor(s.codec, req.reduce) == 1
            && opj::opj_set_decode_area(
                s.codec, s.image, x0 as i32, y0 as i32, x1 as i32, y1 as i32,
            ) == 1
            && opj::opj_decode(s.codec, s.stream, s.image) == 1
            && opj::opj_end_decompress(s.codec, s.stream) == 1
    };
    if !decoded {
        return Err(fail("decoding"));
    }
    components(&s)
}

/// Refuses a header that declares more than `bounds`.
fn within(s: &Session, bounds: Bounds) -> SourceResult<()> {
    // SAFETY: the image is non-null: read_header succeeded and set it.
    let img = unsafe { &*s.image };
    let (width, height) = (img.x1.saturating_sub(img.x0), img.y1.saturating_sub(img.y0));
    if width > bounds.width || height > bounds.height || img.numcomps > bounds.components {
        return Err(SourceError::corrupt(format!(
            "JPEG2000: the codestream declares {width}x{height} pixels of {} components, \
             more than its {}x{} tile of {}",
            img.numcomps, bounds.width, bounds.height, bounds.components
        )));
    }
    Ok(())
}

/// Decodes a whole raw codestream held in memory (a JPEG2000 tile inside a TIFF) at full
/// resolution, every layer; its header may declare at most `bounds`.
pub(crate) fn decode_codestream(data: Vec<u8>, bounds: Bounds) -> SourceResult<Vec<Component>> {
    let request = DecodeRequest {
        reduce: 0,
        layers: 0,
        area: (0, 0, 0, 0),
        bounds: Some(bounds),
    };
    decode(
        &crate::bytes::MemBytes(data),
        Container::Codestream,
        &request,
    )
}

/// Copies the decoded components out of OpenJPEG's image.
fn components(s: &Session) -> SourceResult<Vec<Component>> {
    // SAFETY: the image is non-null and decoded; `comps` holds `numcomps` entries whose
    // `data` (when non-null) holds `w * h` samples.
    unsafe {
        let img = &*s.image;
        if img.comps.is_null() {
            return Err(SourceError::corrupt("JPEG2000: no components"));
        }
        let comps = std::slice::from_raw_parts(img.comps, img.numcomps as usize);
        comps
            .iter()
            .map(|c| {
                let n = c.w as usize * c.h as usize;
                if c.data.is_null() {
                    return Err(SourceError::corrupt("JPEG2000: component not decoded"));
                }
                Ok(Component {
                    width: c.w,
                    height: c.h,
                    data: std::slice::from_raw_parts(c.data, n).to_vec(),
                })
            })
            .collect()
    }
}
