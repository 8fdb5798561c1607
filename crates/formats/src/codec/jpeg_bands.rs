//! Decoding a large JPEG top to bottom in bands of rows, so that a 20000 × 15000 photograph
//! is never held whole (900 MB). The `turbojpeg` crate decodes only whole images, and
//! TurboJPEG's cropping regions skip every row above a band again for each band (measured:
//! half of a 20000 × 15000 conversion went to Huffman decoding); libjpeg's scanline API
//! goes on where it stopped. It is reached through a small C file, `csrc/jpeg_rows.c`
//! (built by build.rs against the libjpeg-turbo that turbojpeg-sys builds), because libjpeg
//! reports errors by longjmp, which must not cross Rust frames.
//!
//! Progressive JPEGs keep the coefficients of the whole image in libjpeg while they are
//! decoded, so they are refused above [`MAX_PROGRESSIVE_PIXELS`].

use crate::error::SourceError;
use crate::error::SourceResult;
use iipsrv_core::raster::Raster;
use std::ffi::{c_char, c_int, c_uchar, c_uint, c_ulong, c_void, CStr};

/// Largest progressive JPEG decoded (about 200 MB of coefficients in libjpeg).
pub(crate) const MAX_PROGRESSIVE_PIXELS: u64 = 64 << 20;

/// The C decoder state (opaque).
#[repr(C)]
struct RowsDecoder {
    _private: [u8; 0],
}

extern "C" {
    fn iip_jpeg_rows_open(
        data: *const c_uchar,
        len: c_ulong,
        ok: *mut c_int,
        width: *mut c_uint,
        height: *mut c_uint,
        channels: *mut c_int,
        progressive: *mut c_int,
        icc: *mut *mut c_uchar,
        icc_len: *mut c_uint,
    ) -> *mut RowsDecoder;
    fn iip_jpeg_rows_read(r: *mut RowsDecoder, out: *mut c_uchar, rows: c_int) -> c_int;
    fn iip_jpeg_rows_error(r: *const RowsDecoder) -> *const c_char;
    fn iip_jpeg_rows_close(r: *mut RowsDecoder);
    fn iip_jpeg_free(p: *mut c_void);
}

/// An open JPEG whose rows are decoded in order.
pub struct JpegBands {
    decoder: *mut RowsDecoder,
    /// The file contents; the decoder reads from them until it is closed.
    _data: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: u8,
    /// The embedded ICC profile.
    pub icc: Option<Vec<u8>>,
    /// Rows decoded so far.
    next_row: u32,
}

// SAFETY: the decoder is owned by this value alone and libjpeg keeps no per-thread state,
// so it may move to another thread; `&self` methods only read the error message, and
// nothing is shared (no Sync).
unsafe impl Send for JpegBands {}

impl Drop for JpegBands {
    fn drop(&mut self) {
        // SAFETY: the decoder came from iip_jpeg_rows_open, is non-null, and is closed once.
        unsafe { iip_jpeg_rows_close(self.decoder) };
    }
}

impl JpegBands {
    /// Reads the header of the JPEG file contents `data`.
    pub fn open(data: Vec<u8>) -> SourceResult<JpegBands> {
        let (mut ok, mut w, mut h, mut ch, mut progressive) = (0, 0, 0, 0, 0);
        let (mut icc_ptr, mut icc_len): (*mut c_uchar, c_uint) = (std::ptr::null_mut(), 0);
        // SAFETY: `data` is moved into the returned value, so the bytes the decoder reads
        // outlive it; every out-pointer is a live local.
        let decoder = unsafe {
            iip_jpeg_rows_open(
                data.as_ptr(),
                data.len() as c_ulong,
                &mut ok,
                &mut w,
                &mut h,
                &mut ch,
                &mut progressive,
                &mut icc_ptr,
                &mut icc_len,
            )
        };
        if decoder.is_null() {
            return Err(SourceError::decoder("out of memory for the JPEG decoder"));
        }
        let icc = (!icc_ptr.is_null()).then(|| {
            // SAFETY: libjpeg malloc'ed `icc_len` bytes at `icc_ptr`; copied, then freed once.
            unsafe {
                let v = std::slice::from_raw_parts(icc_ptr, icc_len as usize).to_vec();
                iip_jpeg_free(icc_ptr as *mut c_void);
                v
            }
        });
        let bands = JpegBands {
            decoder,
            _data: data,
            width: w,
            height: h,
            channels: ch as u8,
            icc,
            next_row: 0,
        };
        if ok == 0 {
            return Err(bands.error("bad JPEG"));
        }
        if progressive == 1 && w as u64 * h as u64 > MAX_PROGRESSIVE_PIXELS {
            return Err(SourceError::unsupported(format!(
                "progressive JPEG of {w} x {h}: decoding it needs the whole image's \
                 coefficients in memory; above {MAX_PROGRESSIVE_PIXELS} pixels, save it as \
                 baseline JPEG, PNG or TIFF first"
            )));
        }
        Ok(bands)
    }

    /// The next `rows` rows (fewer at the bottom of the image), decoded. `y` must be the
    /// first row not read yet: rows come in order.
    pub fn read(&mut self, y: u32, rows: u32) -> SourceResult<Raster> {
        if y != self.next_row {
            return Err(SourceError::decoder(format!(
                "JPEG rows are read in order: asked for row {y}, next is {}",
                self.next_row
            )));
        }
        let rows = rows.min(self.height - y);
        let mut out = Raster::filled(self.width, rows, self.channels, 0);
        // SAFETY: valid decoder; `out` holds rows × width × channels bytes, the layout the
        // decoder writes.
        let got = unsafe { iip_jpeg_rows_read(self.decoder, out.data.as_mut_ptr(), rows as c_int) };
        if got < 0 {
            return Err(self.error("JPEG decoding failed"));
        }
        if got as u32 != rows {
            return Err(SourceError::corrupt(format!(
                "JPEG ends at row {} of {}",
                y + got as u32,
                self.height
            )));
        }
        self.next_row += rows;
        Ok(out)
    }

    fn error(&self, what: &str) -> SourceError {
        // SAFETY: valid decoder; the message is a NUL-terminated buffer inside it.
        let msg = unsafe { CStr::from_ptr(iip_jpeg_rows_error(self.decoder)) };
        SourceError::corrupt(format!("{what}: {}", msg.to_string_lossy()))
    }
}
