//! The inputs of `iipsrv convert`, each read top to bottom in bands of rows without holding
//! the whole image: TIFF (tiled or striped, through the server's own reader, one row of
//! stored tiles or strips at a time), PNG (row by row, the `png` crate), JPEG (bands
//! through [`crate::codec::jpeg_bands`]) and JPEG2000 or HTJ2K (bands of rows decoded as
//! regions by the server's own source). 8-bit and 16-bit unsigned samples, 1-4 channels.

use super::error::{BuildError, InputError, Layout};
use crate::bytes::{ByteReader, ByteSource, FileBytes};
use crate::codec::jpeg_bands::JpegBands;
use crate::error::SourceError;
use crate::open::Kind;
use crate::source::jpeg2000::Jpeg2000Image;
use crate::source::tiff::TiffImage;
use crate::source::ImageSource;
use iipsrv_core::raster::{Pixels, Raster};
use rayon::prelude::*;
use std::path::Path;
use std::sync::Arc;

/// Interlaced PNGs are decoded whole; above this many pixels they are refused.
const MAX_INTERLACED_PIXELS: u64 = 64 << 20;

/// Largest JPEG file read: it is held in memory while it is decoded in bands.
const MAX_JPEG_BYTES: u64 = 1 << 30;

/// Rows of an input in its own sample depth.
pub enum Band {
    /// 8-bit samples.
    Eight(Raster),
    /// 16-bit samples.
    Sixteen(Pixels<u16>),
}

/// An open input.
pub struct Input {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA).
    pub channels: u8,
    /// 8 or 16.
    pub bits: u16,
    /// The ICC profile, carried over to the output.
    pub icc: Option<Vec<u8>>,
    /// The XMP packet, carried over to the output.
    pub xmp: Option<String>,
    reader: Reader,
}

enum Reader {
    Tiff {
        image: Box<TiffImage>,
        /// The last row of stored tiles decoded (its index and pixels), for bands that do
        /// not line up with it.
        strip: Option<(u32, Band)>,
    },
    Png {
        reader: Box<png::Reader<std::io::BufReader<ByteReader>>>,
        /// The whole image of an interlaced PNG.
        whole: Option<Band>,
    },
    Jpeg(JpegBands),
    Jpeg2000(Box<Jpeg2000Image>),
}

impl Input {
    /// Opens the file at `path`, recognised by its first bytes.
    pub fn open(path: &Path) -> Result<Input, BuildError> {
        let bytes = FileBytes::open(path).map_err(|e| BuildError::open(path, e))?;
        Self::open_bytes(Arc::new(bytes), path)
    }

    /// Opens the image in `bytes` (a file or an object; `path` names it in errors),
    /// recognised by its first bytes.
    pub fn open_bytes(bytes: Arc<dyn ByteSource>, path: &Path) -> Result<Input, BuildError> {
        let opened = |e| BuildError::open(path, InputError::Source(e));
        let head = bytes
            .read_at(0, bytes.len().min(12) as usize)
            .map_err(opened)?;
        match Kind::of(&head) {
            Some(Kind::Tiff) => Self::tiff(path, bytes),
            Some(Kind::Flat) if head.starts_with(&[0xff, 0xd8]) => Self::jpeg(path, &*bytes),
            Some(Kind::Flat) => Self::png(path, bytes),
            Some(Kind::Jpeg2000) => Self::jpeg2000(path, bytes),
            None => Err(BuildError::unsupported(path, Layout::UnknownFormat)),
        }
    }

    fn tiff(path: &Path, bytes: Arc<dyn ByteSource>) -> Result<Input, BuildError> {
        let image = TiffImage::open(bytes).map_err(|e| BuildError::open(path, e))?;
        let info = image.info();
        if !crate::open::plain_samples(info) {
            let layout = Layout::TiffSamples {
                channels: info.channels,
                bits: info.bits_per_sample,
                sample_format: info.sample_format,
                colour: info.colour,
            };
            return Err(BuildError::unsupported(path, layout));
        }
        let reader = |image| Reader::Tiff { image, strip: None };
        Ok(Self::described(Box::new(image), reader))
    }

    /// The input of an image `source` opened by the server's reader, which `reader` reads.
    fn described<S: ImageSource>(source: Box<S>, reader: impl FnOnce(Box<S>) -> Reader) -> Input {
        let info = source.info();
        Input {
            width: info.width,
            height: info.height,
            channels: info.channels,
            bits: info.bits_per_sample,
            icc: info.icc.as_ref().map(|p| p.to_vec()),
            xmp: info.metadata.xmp.clone(),
            reader: reader(source),
        }
    }

    fn jpeg2000(path: &Path, bytes: Arc<dyn ByteSource>) -> Result<Input, BuildError> {
        let image = Jpeg2000Image::open(bytes).map_err(|e| BuildError::open(path, e))?;
        let info = image.info();
        if !crate::open::plain_samples(info) {
            let layout = Layout::Jpeg2000Samples {
                channels: info.channels,
                bits: info.bits_per_sample,
            };
            return Err(BuildError::unsupported(path, layout));
        }
        Ok(Self::described(Box::new(image), Reader::Jpeg2000))
    }

    fn png(path: &Path, bytes: Arc<dyn ByteSource>) -> Result<Input, BuildError> {
        let opened = |cause: InputError| BuildError::open(path, cause);
        let stream = std::io::BufReader::with_capacity(1 << 20, ByteReader::new(bytes));
        let mut dec = png::Decoder::new(stream);
        dec.set_transformations(png::Transformations::EXPAND);
        let reader = dec.read_info().map_err(|e| opened(InputError::Png(e)))?;
        let info = reader.info();
        let (width, height, interlaced) = (info.width, info.height, info.interlaced);
        let icc = info.icc_profile.as_ref().map(|p| p.to_vec());
        let xmp = crate::codec::png::xmp_packet(info);
        let (colour, depth) = reader.output_color_type();
        let bits = if depth == png::BitDepth::Sixteen {
            16
        } else {
            8
        };
        if interlaced && width as u64 * height as u64 > MAX_INTERLACED_PIXELS {
            let layout = Layout::InterlacedPng {
                width,
                height,
                max_pixels: MAX_INTERLACED_PIXELS,
            };
            return Err(BuildError::unsupported(path, layout));
        }
        let mut input = Input {
            width,
            height,
            channels: colour.samples() as u8,
            bits,
            icc,
            xmp,
            reader: Reader::Png {
                reader: Box::new(reader),
                whole: None,
            },
        };
        if interlaced {
            let whole = input.png_whole().map_err(opened)?;
            if let Reader::Png { whole: slot, .. } = &mut input.reader {
                *slot = Some(whole);
            }
        }
        Ok(input)
    }

    fn jpeg(path: &Path, bytes: &dyn ByteSource) -> Result<Input, BuildError> {
        if bytes.len() > MAX_JPEG_BYTES {
            let e = SourceError::over_limit("JPEG file too large", bytes.len(), MAX_JPEG_BYTES);
            return Err(BuildError::open(path, e));
        }
        let data = bytes
            .read_at(0, bytes.len() as usize)
            .map_err(|e| BuildError::open(path, e))?;
        let xmp = crate::codec::jpeg::xmp_packet(&data);
        let bands = JpegBands::open(data).map_err(|e| BuildError::open(path, e))?;
        Ok(Input {
            width: bands.width,
            height: bands.height,
            channels: bands.channels,
            bits: 8,
            icc: bands.icc.clone(),
            xmp,
            reader: Reader::Jpeg(bands),
        })
    }

    /// Rows `y .. y + rows` (clipped to the image). Bands must be asked for top to bottom.
    pub fn read(&mut self, y: u32, rows: u32) -> Result<Band, InputError> {
        let rows = rows.min(self.height.saturating_sub(y));
        let (width, channels, bits) = (self.width, self.channels, self.bits);
        match &mut self.reader {
            Reader::Jpeg(bands) => Ok(Band::Eight(bands.read(y, rows)?)),
            Reader::Png {
                whole: Some(all), ..
            } => Ok(crop_band(all, y, rows)),
            Reader::Png { reader, .. } => png_rows(reader, width, rows, channels, bits),
            Reader::Tiff { image, strip } => tiff_rows(image, strip, y, rows, bits),
            Reader::Jpeg2000(image) => region_rows(&**image, y, rows, bits),
        }
    }

    /// The whole image of an interlaced PNG.
    fn png_whole(&mut self) -> Result<Band, InputError> {
        let Reader::Png { reader, .. } = &mut self.reader else {
            return Err(InputError::malformed("not a PNG"));
        };
        let size = reader
            .output_buffer_size()
            .ok_or(InputError::malformed("PNG too large"))?;
        let mut buf = vec![0; size];
        let frame = reader.next_frame(&mut buf).map_err(InputError::Png)?;
        buf.truncate(frame.buffer_size());
        band_from_bytes(buf, self.width, self.height, self.channels, self.bits)
    }
}

/// The next `rows` rows of a non-interlaced PNG.
fn png_rows(
    reader: &mut png::Reader<std::io::BufReader<ByteReader>>,
    width: u32,
    rows: u32,
    channels: u8,
    bits: u16,
) -> Result<Band, InputError> {
    let row_bytes = width as usize * channels as usize * bits as usize / 8;
    let mut buf = Vec::with_capacity(row_bytes * rows as usize);
    for _ in 0..rows {
        let row = reader
            .next_row()
            .map_err(InputError::Png)?
            .ok_or(InputError::malformed("PNG ends early"))?;
        buf.extend_from_slice(row.data());
    }
    band_from_bytes(buf, width, rows, channels, bits)
}

/// PNG sample bytes (16-bit big endian) as a band.
fn band_from_bytes(buf: Vec<u8>, w: u32, h: u32, ch: u8, bits: u16) -> Result<Band, InputError> {
    let bad = || InputError::malformed("PNG rows of an unexpected size");
    if bits == 16 {
        let samples = buf
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect();
        Pixels::from_vec(w, h, ch, samples)
            .map(Band::Sixteen)
            .ok_or_else(bad)
    } else {
        Raster::from_vec(w, h, ch, buf)
            .map(Band::Eight)
            .ok_or_else(bad)
    }
}

/// Rows `y .. y + rows` of a decoded band.
fn crop_band(band: &Band, y: u32, rows: u32) -> Band {
    match band {
        Band::Eight(p) => Band::Eight(p.crop(0, y, p.width, rows)),
        Band::Sixteen(p) => Band::Sixteen(p.crop(0, y, p.width, rows)),
    }
}

/// Rows `y .. y + rows` of a TIFF's full resolution, decoding each row of stored tiles (or
/// each strip) once: the last one is kept for the next band.
fn tiff_rows(
    image: &TiffImage,
    strip: &mut Option<(u32, Band)>,
    y: u32,
    rows: u32,
    bits: u16,
) -> Result<Band, InputError> {
    let level = image
        .info()
        .levels
        .first()
        .ok_or(InputError::malformed("TIFF without levels"))?
        .clone();
    let th = level.tile_height.max(1);
    let mut parts = Vec::new();
    for ty in y / th..=(y + rows - 1) / th {
        if strip.as_ref().is_none_or(|(at, _)| *at != ty) {
            *strip = Some((ty, tiff_strip(image, &level, ty, bits)?));
        }
        let Some((_, band)) = strip.as_ref() else {
            return Err(InputError::malformed("no strip"));
        };
        let top = (ty * th).max(y) - ty * th;
        let bottom = ((ty + 1) * th).min(y + rows).min(level.height) - ty * th;
        parts.push(crop_band(band, top, bottom - top));
    }
    Ok(stack(parts))
}

/// Rows `y .. y + rows` of a JPEG2000's full resolution, decoded as one region.
fn region_rows(image: &dyn ImageSource, y: u32, rows: u32, bits: u16) -> Result<Band, InputError> {
    let area = (0, y, image.info().width, y + rows);
    let none = || InputError::malformed("the image decodes no regions");
    if bits == 16 {
        let r = image.read_region_float(0, area).ok_or_else(none)??;
        let samples = r.data.iter().map(|&v| v.round().clamp(0.0, 65535.0) as u16);
        Pixels::from_vec(r.width, r.height, r.channels, samples.collect())
            .map(Band::Sixteen)
            .ok_or(InputError::malformed("bad region"))
    } else {
        Ok(Band::Eight(image.read_region(0, area).ok_or_else(none)??))
    }
}

/// One row of stored tiles (or one strip), decoded in parallel and joined.
fn tiff_strip(
    image: &TiffImage,
    level: &iipsrv_core::info::Level,
    ty: u32,
    bits: u16,
) -> Result<Band, InputError> {
    if bits == 16 {
        let strip = decode_strip(level, ty, image.info().channels, |tx| {
            let t = image.read_tile_float(0, tx, ty)?;
            let samples = t.data.iter().map(|&v| v.round().clamp(0.0, 65535.0) as u16);
            Pixels::from_vec(t.width, t.height, t.channels, samples.collect())
                .ok_or(InputError::malformed("bad tile"))
        });
        strip.map(Band::Sixteen)
    } else {
        let strip = decode_strip(level, ty, image.info().channels, |tx| {
            Ok(image.read_tile(0, tx, ty)?)
        });
        strip.map(Band::Eight)
    }
}

/// The tiles of tile row `ty`, decoded in parallel by `decode(tx)` and joined (edge tiles
/// clipped to the level).
fn decode_strip<T: Copy + Default + Send>(
    level: &iipsrv_core::info::Level,
    ty: u32,
    channels: u8,
    decode: impl Fn(u32) -> Result<Pixels<T>, InputError> + Sync + Send,
) -> Result<Pixels<T>, InputError> {
    let tiles: Vec<Pixels<T>> = (0..level.tiles_across())
        .into_par_iter()
        .map(decode)
        .collect::<Result<_, _>>()?;
    let height = level
        .tile_height
        .min(level.height.saturating_sub(ty * level.tile_height));
    let mut out = Pixels::filled(level.width, height, channels, T::default());
    for (tx, t) in tiles.iter().enumerate() {
        join(&mut out, t, tx as u32 * level.tile_width);
    }
    Ok(out)
}

/// Copies a decoded tile into a strip at column `x` (clipped to both).
fn join<T: Copy + Default>(strip: &mut Pixels<T>, tile: &Pixels<T>, x: u32) {
    let w = tile.width.min(strip.width.saturating_sub(x));
    let h = tile.height.min(strip.height);
    strip.blit(tile, iipsrv_core::view::Rect { x: 0, y: 0, w, h }, x, 0);
}

/// Bands of one width and depth stacked top to bottom.
fn stack(parts: Vec<Band>) -> Band {
    fn cat<T: Copy + Default>(parts: Vec<Pixels<T>>) -> Pixels<T> {
        let mut it = parts.into_iter();
        let mut first = it
            .next()
            .unwrap_or_else(|| Pixels::filled(0, 0, 1, T::default()));
        for p in it {
            first.height += p.height;
            first.data.extend_from_slice(&p.data);
        }
        first
    }
    let (mut eights, mut sixteens) = (Vec::new(), Vec::new());
    for part in parts {
        match part {
            Band::Eight(p) => eights.push(p),
            Band::Sixteen(p) => sixteens.push(p),
        }
    }
    if sixteens.is_empty() {
        Band::Eight(cat(eights))
    } else {
        Band::Sixteen(cat(sixteens))
    }
}
