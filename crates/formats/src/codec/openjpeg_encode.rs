//! JPEG2000 Part 1 encoding through OpenJPEG (bundled by `openjpeg-sys`) for `iipsrv
//! convert`: the image is given one row of codestream tiles at a time, top to bottom, and
//! each tile is compressed and written as it comes (`opj_write_tile`), so only one row of
//! tiles is ever held. The file is a JP2 (boxes) or a raw codestream, with TLM and PLT
//! markers (OpenJPEG ≥ 2.4) so that a reader finds any tile and packet without a scan.
//!
//! One thread encodes: the workspace builds OpenJPEG without its thread pool.
//!
//! The OpenJPEG objects live in a guard that frees them on every path; OpenJPEG's first
//! error message is kept for the error we return.

use super::openjpeg::{ignore, on_error};
use crate::error::{EncodeError, EncodeFormat};
use iipsrv_core::raster::Pixels;
use openjpeg_sys as opj;
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::ptr;

/// The layout of the codestream written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Components: 1 grey or 3 RGB.
    pub channels: u8,
    /// Bits per sample: 8 or 16.
    pub bits: u16,
    /// Codestream tile width and height.
    pub tile: u32,
    /// Wavelet decomposition levels (resolutions − 1).
    pub levels: u32,
    /// Compression ratio of the irreversible 9/7 wavelet; `None` for reversible 5/3
    /// (lossless).
    pub rate: Option<f32>,
    /// A JP2 file (true) or a raw codestream.
    pub jp2: bool,
}

/// A JPEG2000 file being written tile row by tile row.
pub(crate) struct Encoder {
    codec: *mut opj::opj_codec_t,
    stream: *mut opj::opj_stream_t,
    image: *mut opj::opj_image_t,
    /// OpenJPEG's first error message; boxed, as OpenJPEG holds its address.
    messages: Box<RefCell<String>>,
    layout: Layout,
    /// The index of the next tile row.
    row: u32,
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or was created by OpenJPEG for this encoder and is
        // freed exactly once here; destroying the stream closes its file.
        unsafe {
            if !self.stream.is_null() {
                opj::opj_stream_destroy(self.stream);
            }
            if !self.codec.is_null() {
                opj::opj_destroy_codec(self.codec);
            }
            if !self.image.is_null() {
                opj::opj_image_destroy(self.image);
            }
        }
    }
}

/// The encoding parameters of `layout`: tiles, RPCL, one quality layer.
fn parameters(layout: &Layout) -> opj::opj_cparameters_t {
    // SAFETY: a plain C struct, zeroed then filled by OpenJPEG's own defaults.
    let mut p: opj::opj_cparameters_t = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is a valid parameters struct.
    unsafe { opj::opj_set_default_encoder_parameters(&mut p) };
    p.tile_size_on = 1;
    p.cp_tdx = layout.tile as i32;
    p.cp_tdy = layout.tile as i32;
    p.prog_order = opj::PROG_ORDER::OPJ_RPCL;
    p.numresolution = layout.levels as i32 + 1;
    p.tcp_numlayers = 1;
    p.tcp_rates[0] = layout.rate.unwrap_or(0.0);
    p.cp_disto_alloc = 1;
    p.irreversible = i32::from(layout.rate.is_some());
    p.tcp_mct = c_char::from(layout.channels == 3);
    p
}

impl Encoder {
    /// Creates the file at `path` and writes its header.
    pub(crate) fn create(path: &Path, layout: Layout) -> Result<Encoder, EncodeError> {
        use std::os::unix::ffi::OsStrExt;
        let name = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| library("the output path holds a NUL byte"))?;
        let format = if layout.jp2 {
            opj::CODEC_FORMAT::OPJ_CODEC_JP2
        } else {
            opj::CODEC_FORMAT::OPJ_CODEC_J2K
        };
        let mut comps: Vec<opj::opj_image_cmptparm_t> = (0..layout.channels)
            .map(|_| opj::opj_image_cmptparm_t {
                dx: 1,
                dy: 1,
                w: layout.width,
                h: layout.height,
                x0: 0,
                y0: 0,
                prec: layout.bits as u32,
                bpp: layout.bits as u32,
                sgnd: 0,
            })
            .collect();
        let colour = if layout.channels == 3 {
            opj::COLOR_SPACE::OPJ_CLRSPC_SRGB
        } else {
            opj::COLOR_SPACE::OPJ_CLRSPC_GRAY
        };
        // SAFETY: plain constructor calls with valid arguments (`comps` holds `channels`
        // entries and is only read); null results are checked before use.
        let mut e = Encoder {
            codec: unsafe { opj::opj_create_compress(format) },
            stream: ptr::null_mut(),
            image: unsafe {
                opj::opj_image_tile_create(layout.channels as u32, comps.as_mut_ptr(), colour)
            },
            messages: Box::new(RefCell::new(String::new())),
            layout,
            row: 0,
        };
        if e.codec.is_null() || e.image.is_null() {
            return Err(library("out of memory"));
        }
        e.start(&name)?;
        Ok(e)
    }

    /// Sets the encoder up and writes the main header to the file named `name`.
    fn start(&mut self, name: &CString) -> Result<(), EncodeError> {
        let mut p = parameters(&self.layout);
        let log = &*self.messages as *const RefCell<String> as *mut c_void;
        let options = [c"TLM=YES".as_ptr(), c"PLT=YES".as_ptr(), ptr::null()];
        // SAFETY: the codec and image are valid and owned by `self`; `messages` lives as
        // long as the codec (both freed with `self`); the options array is NUL-terminated
        // and OpenJPEG copies what it reads; `name` is a NUL-terminated path.
        let ok = unsafe {
            let img = &mut *self.image;
            img.x0 = 0;
            img.y0 = 0;
            img.x1 = self.layout.width;
            img.y1 = self.layout.height;
            opj::opj_set_error_handler(self.codec, Some(on_error), log);
            opj::opj_set_warning_handler(self.codec, Some(ignore), ptr::null_mut());
            opj::opj_set_info_handler(self.codec, Some(ignore), ptr::null_mut());
            opj::opj_setup_encoder(self.codec, &mut p, self.image) == 1
                && opj::opj_encoder_set_extra_options(self.codec, options.as_ptr()) == 1
                && {
                    self.stream = opj::opj_stream_create_default_file_stream(name.as_ptr(), 0);
                    !self.stream.is_null()
                }
                && opj::opj_start_compress(self.codec, self.image, self.stream) == 1
        };
        if ok {
            Ok(())
        } else {
            Err(self.failed("starting the codestream"))
        }
    }

    /// The error of a failed step, with OpenJPEG's message.
    fn failed(&self, what: &str) -> EncodeError {
        let m = self.messages.borrow();
        library(format!("JPEG2000: {what} failed {m}").trim())
    }

    /// Encodes and writes the next row of tiles: `pixels` holds all of its rows (the
    /// tile height, or what is left of the image), interleaved, at the layout's depth.
    pub(crate) fn push_row<T: Copy + Into<u16>>(
        &mut self,
        pixels: &Pixels<T>,
    ) -> Result<(), EncodeError> {
        let Layout { width, tile, .. } = self.layout;
        let rows = tile.min(self.layout.height.saturating_sub(self.row * tile));
        if pixels.width != width
            || pixels.height != rows
            || pixels.channels != self.layout.channels
            || pixels.data.len() != width as usize * rows as usize * pixels.channels as usize
        {
            return Err(library("JPEG2000: a row of tiles of the wrong size"));
        }
        let across = width.div_ceil(tile);
        let mut planar = Vec::new();
        for tx in 0..across {
            let w = tile.min(width - tx * tile);
            planar.clear();
            tile_planes(pixels, tx * tile, w, self.layout.bits, &mut planar);
            let index = self.row * across + tx;
            // SAFETY: codec and stream are valid; `planar` holds exactly the tile's samples
            // (the row's size is checked above; component after component, 1 or 2 bytes
            // each as the precision says), which OpenJPEG only reads and checks against
            // the tile's size itself.
            let ok = unsafe {
                opj::opj_write_tile(
                    self.codec,
                    index,
                    planar.as_mut_ptr(),
                    planar.len() as u32,
                    self.stream,
                )
            };
            if ok != 1 {
                return Err(self.failed("writing a tile"));
            }
        }
        self.row += 1;
        Ok(())
    }

    /// Writes the end of the codestream (and the JP2 box lengths) and closes the file.
    pub(crate) fn finish(mut self) -> Result<(), EncodeError> {
        // SAFETY: valid codec and stream; every tile was written.
        if unsafe { opj::opj_end_compress(self.codec, self.stream) } != 1 {
            return Err(self.failed("ending the codestream"));
        }
        // SAFETY: the stream is valid and destroyed once (then nulled for Drop); this
        // flushes and closes the file.
        unsafe { opj::opj_stream_destroy(self.stream) };
        self.stream = ptr::null_mut();
        Ok(())
    }
}

/// The samples of the `w` columns from `x` of `pixels`, component after component, as
/// `opj_write_tile` takes them: bytes for 8 bits, native 16-bit words above.
fn tile_planes<T: Copy + Into<u16>>(
    pixels: &Pixels<T>,
    x: u32,
    w: u32,
    bits: u16,
    out: &mut Vec<u8>,
) {
    let ch = pixels.channels as usize;
    let stride = pixels.width as usize * ch;
    for c in 0..ch {
        for row in pixels.data.chunks_exact(stride) {
            let cols = row[x as usize * ch..(x + w) as usize * ch].iter().skip(c);
            for &v in cols.step_by(ch) {
                if bits > 8 {
                    out.extend_from_slice(&v.into().to_ne_bytes());
                } else {
                    out.push(v.into() as u8);
                }
            }
        }
    }
}

/// [`EncodeError::Library`] of JPEG2000.
fn library(message: impl std::fmt::Display) -> EncodeError {
    EncodeError::library(EncodeFormat::Jpeg2000, message)
}
