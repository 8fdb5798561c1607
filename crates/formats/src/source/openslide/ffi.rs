//! The part of OpenSlide's C API the OpenSlide source uses, behind a safe handle: which
//! vendor claims a file, the levels, `read_region`, properties and associated images.
//! Every `unsafe` block of the OpenSlide back end is here.
//!
//! An `openslide_t` may be used by several threads at once (OpenSlide's API documentation
//! says its functions are thread-safe; since 3.3.1 concurrent `openslide_read_region` calls
//! on one handle run in parallel), so one handle serves every request for an open image.
//! Once a call fails the handle is in an error state for good: every later call fails and
//! [`Slide::error`] says why.
//!
//! API: openslide.org/api/openslide_8h.html (3.4.1 as Debian 12 ships it; 4.x keeps it).

use std::ffi::{c_char, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

/// OpenSlide's opaque slide handle.
#[repr(C)]
struct RawSlide {
    _private: [u8; 0],
}

// Linked through pkg-config by build.rs (feature `openslide`).
extern "C" {
    fn openslide_detect_vendor(filename: *const c_char) -> *const c_char;
    fn openslide_open(filename: *const c_char) -> *mut RawSlide;
    fn openslide_close(osr: *mut RawSlide);
    fn openslide_get_error(osr: *mut RawSlide) -> *const c_char;
    fn openslide_get_level_count(osr: *mut RawSlide) -> i32;
    fn openslide_get_level_dimensions(osr: *mut RawSlide, level: i32, w: *mut i64, h: *mut i64);
    fn openslide_get_level_downsample(osr: *mut RawSlide, level: i32) -> f64;
    fn openslide_read_region(
        osr: *mut RawSlide,
        dest: *mut u32,
        x: i64,
        y: i64,
        level: i32,
        w: i64,
        h: i64,
    );
    fn openslide_get_property_names(osr: *mut RawSlide) -> *const *const c_char;
    fn openslide_get_property_value(osr: *mut RawSlide, name: *const c_char) -> *const c_char;
    fn openslide_get_associated_image_names(osr: *mut RawSlide) -> *const *const c_char;
    fn openslide_get_associated_image_dimensions(
        osr: *mut RawSlide,
        name: *const c_char,
        w: *mut i64,
        h: *mut i64,
    );
    fn openslide_read_associated_image(osr: *mut RawSlide, name: *const c_char, dest: *mut u32);
    fn openslide_get_version() -> *const c_char;
}

/// An open slide: one OpenSlide handle, closed when dropped.
pub(crate) struct Slide {
    raw: NonNull<RawSlide>,
}

// SAFETY: OpenSlide documents its functions as thread-safe: one `openslide_t` may be read
// from several threads at once (its caches lock internally), and the handle is not tied to
// the thread that opened it.
unsafe impl Send for Slide {}
// SAFETY: as for Send; every method takes `&self` and OpenSlide serialises what it must.
unsafe impl Sync for Slide {}

/// A path as the C string OpenSlide takes; None when it holds a NUL byte.
fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

/// A C string owned by OpenSlide copied out; None for NULL.
///
/// SAFETY (of callers): `p` is NULL or a NUL-terminated string that stays valid during the
/// call.
unsafe fn copied(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
}

/// The strings of a NULL-terminated array owned by OpenSlide.
///
/// SAFETY (of callers): `list` is NULL or a NULL-terminated array of NUL-terminated strings
/// that stay valid during the call.
unsafe fn copied_list(list: *const *const c_char) -> Vec<String> {
    let mut out = Vec::new();
    if list.is_null() {
        return out;
    }
    let mut at = list;
    while let Some(s) = copied(*at) {
        out.push(s);
        at = at.add(1);
    }
    out
}

/// The version of the OpenSlide library linked.
pub(crate) fn version() -> String {
    // SAFETY: a static string of the library, or NULL.
    unsafe { copied(openslide_get_version()) }.unwrap_or_default()
}

/// The vendor OpenSlide recognises the file at `path` as (`trestle`, `leica`, `mirax`,
/// `generic-tiff` …); None when it reads no such format.
pub(crate) fn detect_vendor(path: &Path) -> Option<String> {
    let path = c_path(path)?;
    // SAFETY: `path` is a live NUL-terminated string; the result is a static string of the
    // library or NULL.
    unsafe { copied(openslide_detect_vendor(path.as_ptr())) }
}

impl Slide {
    /// Opens the slide at `path`; the error is OpenSlide's message (which may name the
    /// path: the caller words it for users).
    pub fn open(path: &Path) -> Result<Slide, String> {
        let c = c_path(path).ok_or("a path with a NUL byte")?;
        // SAFETY: `c` is a live NUL-terminated string; the result is a handle we own or NULL.
        let raw = unsafe { openslide_open(c.as_ptr()) };
        let raw = NonNull::new(raw).ok_or("not a slide OpenSlide reads")?;
        let slide = Slide { raw };
        match slide.error() {
            Some(e) => Err(e),
            None => Ok(slide),
        }
    }

    fn ptr(&self) -> *mut RawSlide {
        self.raw.as_ptr()
    }

    /// Why the handle is in its error state; None while it is usable.
    pub fn error(&self) -> Option<String> {
        // SAFETY: a live handle; the message belongs to the handle and is copied at once.
        unsafe { copied(openslide_get_error(self.ptr())) }
    }

    /// The number of levels (-1 in the error state).
    pub fn level_count(&self) -> i32 {
        // SAFETY: a live handle.
        unsafe { openslide_get_level_count(self.ptr()) }
    }

    /// Width and height of `level` (-1, -1 when there is no such level or on error).
    pub fn level_dimensions(&self, level: i32) -> (i64, i64) {
        let (mut w, mut h) = (-1i64, -1i64);
        // SAFETY: a live handle and two live out-parameters.
        unsafe { openslide_get_level_dimensions(self.ptr(), level, &mut w, &mut h) };
        (w, h)
    }

    /// The downsample factor of `level` (-1 when there is no such level or on error).
    pub fn level_downsample(&self, level: i32) -> f64 {
        // SAFETY: a live handle.
        unsafe { openslide_get_level_downsample(self.ptr(), level) }
    }

    /// The `w` × `h` pixels of `level` whose top left is (`x`, `y`) in level 0's
    /// coordinates, as premultiplied ARGB words.
    pub fn read_region(
        &self,
        (x, y): (i64, i64),
        level: i32,
        w: u32,
        h: u32,
    ) -> Result<Vec<u32>, String> {
        let mut dest = vec![0u32; w as usize * h as usize];
        // SAFETY: `dest` holds w × h words, what OpenSlide writes for a w × h region.
        unsafe {
            openslide_read_region(
                self.ptr(),
                dest.as_mut_ptr(),
                x,
                y,
                level,
                w as i64,
                h as i64,
            )
        };
        self.error().map_or(Ok(dest), Err)
    }

    /// Every property, name and value, in OpenSlide's order.
    pub fn properties(&self) -> Vec<(String, String)> {
        // SAFETY: a live handle; the array and its strings belong to the handle.
        let names = unsafe { copied_list(openslide_get_property_names(self.ptr())) };
        names
            .into_iter()
            .filter_map(|name| {
                let c = CString::new(name.as_str()).ok()?;
                // SAFETY: a live handle and a live NUL-terminated name.
                let value = unsafe { copied(openslide_get_property_value(self.ptr(), c.as_ptr())) };
                Some((name, value?))
            })
            .collect()
    }

    /// The names of the associated images (`label`, `macro`, `thumbnail` …).
    pub fn associated_names(&self) -> Vec<String> {
        // SAFETY: a live handle; the array and its strings belong to the handle.
        unsafe { copied_list(openslide_get_associated_image_names(self.ptr())) }
    }

    /// Associated image `name`: its width, height and pixels as premultiplied ARGB words;
    /// an error when it is missing, empty, or has more than `max_pixels`.
    pub fn read_associated(
        &self,
        name: &str,
        max_pixels: u64,
    ) -> Result<(u32, u32, Vec<u32>), String> {
        let c = CString::new(name).map_err(|_| "a name with a NUL byte")?;
        let (mut w, mut h) = (-1i64, -1i64);
        // SAFETY: a live handle, a live name and two live out-parameters.
        unsafe {
            openslide_get_associated_image_dimensions(self.ptr(), c.as_ptr(), &mut w, &mut h)
        };
        let size = u32::try_from(w).ok().zip(u32::try_from(h).ok());
        let (w, h) = size
            .filter(|&(w, h)| w > 0 && h > 0 && w as u64 * h as u64 <= max_pixels)
            .ok_or_else(|| format!("associated image {name} of {w}x{h} pixels"))?;
        let mut dest = vec![0u32; w as usize * h as usize];
        // SAFETY: `dest` holds w × h words, the size OpenSlide just gave for this image.
        unsafe { openslide_read_associated_image(self.ptr(), c.as_ptr(), dest.as_mut_ptr()) };
        match self.error() {
            Some(e) => Err(e),
            None => Ok((w, h, dest)),
        }
    }
}

impl Drop for Slide {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by `Slide::open`, is closed once, here.
        unsafe { openslide_close(self.ptr()) }
    }
}
