//! Several planes of one image (the pages of an OME-TIFF or of any stack) seen as one image
//! of as many channels, channel `i` being channel 0 of plane `i`: what a fluorescence
//! composite reads, so that the processing pipeline mixes the planes as it mixes the bands
//! of a multi-band file (per-channel MINMAX, then the colour twist).

use super::ImageSource;
use crate::error::{SourceError, SourceResult};
use iipsrv_core::info::ImageInfo;
use iipsrv_core::raster::{FloatRaster, Pixels, Raster};
use std::sync::Arc;

/// Planes of the same size, pyramid and sample type, read together.
struct Planes {
    info: ImageInfo,
    planes: Vec<Arc<dyn ImageSource>>,
}

/// The planes `planes` as one image whose channels are their first channels; refused when
/// there are none, more than 255, or when they differ in size, pyramid or samples.
pub fn composite(planes: Vec<Arc<dyn ImageSource>>) -> SourceResult<Arc<dyn ImageSource>> {
    let first = planes
        .first()
        .ok_or_else(|| SourceError::limit("a composite needs at least one plane"))?;
    let count = u8::try_from(planes.len())
        .map_err(|_| SourceError::limit("a composite takes at most 255 planes"))?;
    let base = first.info();
    let alike = planes.iter().all(|p| {
        let i = p.info();
        i.levels == base.levels
            && i.bits_per_sample == base.bits_per_sample
            && i.sample_format == base.sample_format
            && i.colour == base.colour
    });
    if !alike {
        return Err(SourceError::unsupported(
            "planes of different sizes or sample types cannot be composited",
        ));
    }
    let mut info = base.clone();
    info.channels = count;
    info.min_max = planes
        .iter()
        .map(|p| p.info().min_max.first().copied().unwrap_or((0.0, 255.0)))
        .collect();
    info.icc = None;
    Ok(Arc::new(Planes { info, planes }))
}

/// Channel 0 of each raster, interleaved into one raster of as many channels.
fn interleave<T, P>(parts: &[P]) -> SourceResult<Pixels<T>>
where
    T: Copy + Default,
    P: std::ops::Deref<Target = Pixels<T>>,
{
    let (w, h) = parts.first().map_or((0, 0), |p| (p.width, p.height));
    if parts.iter().any(|p| (p.width, p.height) != (w, h)) {
        return Err(SourceError::corrupt("the planes' tiles differ in size"));
    }
    let n = parts.len();
    let mut out = Pixels::filled(w, h, n as u8, T::default());
    for (i, part) in parts.iter().enumerate() {
        let step = part.channels.max(1) as usize;
        let samples = part.data.iter().step_by(step);
        for (dst, &v) in out.data.iter_mut().skip(i).step_by(n).zip(samples) {
            *dst = v;
        }
    }
    Ok(out)
}

impl Planes {
    /// Each plane's answer to `read`, interleaved.
    fn each<T: Copy + Default, P: std::ops::Deref<Target = Pixels<T>>>(
        &self,
        read: impl Fn(&dyn ImageSource) -> SourceResult<P>,
    ) -> SourceResult<Pixels<T>> {
        let parts: Vec<P> = self
            .planes
            .iter()
            .map(|p| read(p.as_ref()))
            .collect::<SourceResult<_>>()?;
        interleave(&parts)
    }

    /// Each plane's region when every plane reads regions in one piece.
    fn each_region<T: Copy + Default>(
        &self,
        read: impl Fn(&dyn ImageSource) -> Option<SourceResult<Pixels<T>>>,
    ) -> Option<SourceResult<Pixels<T>>> {
        let parts: Option<Vec<SourceResult<Pixels<T>>>> =
            self.planes.iter().map(|p| read(p.as_ref())).collect();
        let parts = parts?.into_iter().map(|r| r.map(Box::new));
        Some(
            parts
                .collect::<SourceResult<Vec<_>>>()
                .and_then(|p| interleave(&p)),
        )
    }
}

impl ImageSource for Planes {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn read_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Raster> {
        self.each(|p| p.read_tile_shared(level, tx, ty))
    }

    fn read_tile_float(&self, level: usize, tx: u32, ty: u32) -> SourceResult<FloatRaster> {
        self.each(|p| p.read_tile_float(level, tx, ty).map(Box::new))
    }

    fn read_region(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<Raster>> {
        self.each_region(|p| p.read_region(level, area))
    }

    fn read_region_float(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<FloatRaster>> {
        self.each_region(|p| p.read_region_float(level, area))
    }

    fn is_remote(&self) -> bool {
        self.planes.iter().any(|p| p.is_remote())
    }

    fn jpeg_tile(&self, _level: usize, _tx: u32, _ty: u32) -> SourceResult<Option<Vec<u8>>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::memory::MemoryImage;
    use iipsrv_core::info::plain_info;

    fn plane(value: u8, w: u32) -> Arc<dyn ImageSource> {
        let full = Raster::filled(w, 8, 1, value);
        Arc::new(MemoryImage::new(full, plain_info(w, 8, 1)))
    }

    #[test]
    fn channels_are_the_planes_in_order() {
        let c = composite(vec![plane(10, 8), plane(20, 8), plane(30, 8)]).expect("alike");
        assert_eq!(c.info().channels, 3);
        let t = c.read_tile(0, 0, 0).expect("tile");
        assert_eq!(&t.data[..6], &[10, 20, 30, 10, 20, 30]);
    }

    #[test]
    fn planes_that_differ_are_refused() {
        assert!(composite(vec![plane(1, 8), plane(1, 9)]).is_err());
        assert!(composite(Vec::new()).is_err());
    }
}
