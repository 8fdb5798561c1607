//! HTJ2K encoding through OpenJPH (the system library, Debian 12: libopenjph-dev 0.9) for
//! `iipsrv convert`: a raw codestream written to a file, rows given top to bottom, which
//! `csrc/ojph_encode.cpp` hands to OpenJPH line by line. Without the cargo feature
//! `htj2k`, [`Encoder::create`] answers [`EncodeError::Library`] saying so.
//!
//! OpenJPH 0.9 sets up every tile of a codestream at once and keeps their compressed data
//! until the end (a 12000 × 8800 image took 640 MB), and writes no TLM marker: the caller
//! (`pyramid::jpeg2000`) encodes one row of tiles per codestream, gathers their tile-parts
//! into one codestream and adds the TLM marker.

use crate::error::{EncodeError, EncodeFormat};
use iipsrv_core::raster::Pixels;
use std::path::Path;

/// The layout of the codestream written.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub(crate) struct Layout {
    /// Width in pixels.
    pub width: u32,
    /// Rows of this codestream.
    pub height: u32,
    /// The image row this codestream starts at: its image and tile offsets are (0, top),
    /// so that its tiles are coded as the same tiles of the whole image are.
    pub top: u32,
    /// Components: 1 grey or 3 RGB.
    pub channels: u32,
    /// Bits per sample: 8 or 16.
    pub bits: u32,
    /// Codestream tile width and height.
    pub tile: u32,
    /// Wavelet decomposition levels.
    pub levels: u32,
    /// The quantisation step of the irreversible 9/7 wavelet; 0 for reversible 5/3
    /// (lossless).
    pub qstep: f32,
}

/// [`EncodeError::Library`] of HTJ2K.
fn library(message: impl std::fmt::Display) -> EncodeError {
    EncodeError::library(EncodeFormat::Htj2k, message)
}

#[cfg(feature = "htj2k")]
mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    extern "C" {
        pub fn iipsrv_ojph_open(
            path: *const c_char,
            layout: *const super::Layout,
            err: *mut c_char,
            err_len: usize,
        ) -> *mut c_void;
        pub fn iipsrv_ojph_push(
            e: *mut c_void,
            samples: *const c_void,
            rows: u32,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        pub fn iipsrv_ojph_finish(e: *mut c_void, err: *mut c_char, err_len: usize) -> c_int;
        pub fn iipsrv_ojph_free(e: *mut c_void);
    }
}

/// An HTJ2K codestream being written row by row.
pub(crate) struct Encoder {
    #[cfg(feature = "htj2k")]
    raw: std::ptr::NonNull<std::ffi::c_void>,
    layout: Layout,
}

/// Room for OpenJPH's message.
#[cfg(feature = "htj2k")]
const MESSAGE: usize = 256;

/// The text OpenJPH left in `buf`.
#[cfg(feature = "htj2k")]
fn message(buf: &[u8; MESSAGE], what: &str) -> EncodeError {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(MESSAGE);
    let text = String::from_utf8_lossy(&buf[..end]);
    library(format!("HTJ2K: {what} failed: {text}"))
}

#[cfg(feature = "htj2k")]
impl Encoder {
    /// Creates the codestream file at `path` and writes its main header.
    pub(crate) fn create(path: &Path, layout: Layout) -> Result<Encoder, EncodeError> {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| library("the output path holds a NUL byte"))?;
        let mut err = [0u8; MESSAGE];
        // SAFETY: `name` is NUL-terminated, `layout` is a `repr(C)` struct the shim only
        // reads, `err` has room for MESSAGE bytes; the shim catches every C++ exception.
        let raw = unsafe {
            ffi::iipsrv_ojph_open(name.as_ptr(), &layout, err.as_mut_ptr().cast(), MESSAGE)
        };
        let raw = std::ptr::NonNull::new(raw).ok_or_else(|| message(&err, "starting"))?;
        Ok(Encoder { raw, layout })
    }

    /// Encodes the next rows: `pixels` is interleaved at the layout's depth and width.
    pub(crate) fn push<T: Copy>(&mut self, pixels: &Pixels<T>) -> Result<(), EncodeError> {
        let size = (self.layout.bits as usize).div_ceil(8);
        let want = self.layout.width as usize * self.layout.channels as usize;
        if pixels.width != self.layout.width
            || pixels.data.len() != want * pixels.height as usize
            || std::mem::size_of::<T>() != size
        {
            return Err(library("HTJ2K: rows of the wrong size"));
        }
        let mut err = [0u8; MESSAGE];
        // SAFETY: `raw` is a live encoder; `pixels.data` holds `height` rows of
        // `width * channels` samples of the layout's size (checked above), only read.
        let ok = unsafe {
            ffi::iipsrv_ojph_push(
                self.raw.as_ptr(),
                pixels.data.as_ptr().cast(),
                pixels.height,
                err.as_mut_ptr().cast(),
                MESSAGE,
            )
        };
        if ok == 1 {
            Ok(())
        } else {
            Err(message(&err, "encoding"))
        }
    }

    /// Writes the end of the codestream and closes the file.
    pub(crate) fn finish(self) -> Result<(), EncodeError> {
        let mut err = [0u8; MESSAGE];
        // SAFETY: `raw` is a live encoder; it is freed by Drop afterwards.
        let ok =
            unsafe { ffi::iipsrv_ojph_finish(self.raw.as_ptr(), err.as_mut_ptr().cast(), MESSAGE) };
        if ok == 1 {
            Ok(())
        } else {
            Err(message(&err, "ending the codestream"))
        }
    }
}

#[cfg(feature = "htj2k")]
impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `iipsrv_ojph_open` and is freed once, here.
        unsafe { ffi::iipsrv_ojph_free(self.raw.as_ptr()) }
    }
}

#[cfg(not(feature = "htj2k"))]
impl Encoder {
    /// Without OpenJPH: says so.
    pub(crate) fn create(_path: &Path, _layout: Layout) -> Result<Encoder, EncodeError> {
        Err(library(
            "this iipsrv was built without HTJ2K (cargo feature `htj2k`, libopenjph-dev)",
        ))
    }

    /// Never reached: no encoder is made.
    pub(crate) fn push<T: Copy>(&mut self, _pixels: &Pixels<T>) -> Result<(), EncodeError> {
        Err(library(format!("{:?}", self.layout)))
    }

    /// Never reached: no encoder is made.
    pub(crate) fn finish(self) -> Result<(), EncodeError> {
        Ok(())
    }
}
