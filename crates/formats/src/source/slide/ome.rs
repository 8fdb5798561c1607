//! OME-TIFF: a TIFF whose first ImageDescription is OME-XML. Each top-level directory is
//! one plane (a channel, Z section or time point, in the XML's DimensionOrder) with its
//! pyramid in SubIFDs; the planes are served as the pages of a stack. The XML gives the
//! physical pixel size (`PhysicalSizeX`/`Y` with their units) and the channels' names and
//! colours. Only the first `Image` of the XML is read; a description that is not OME-XML,
//! or XML that does not parse, gives no layout (the file is then an ordinary TIFF).
//!
//! Format: OME-TIFF and the OME data model (docs.openmicroscopy.org/ome-model).

use super::microns;
use iipsrv_core::info::{Channel, Metadata};
use quick_xml::events::{BytesStart, Event};
use quick_xml::XmlVersion;

/// Most channels, Z sections or time points taken from the XML.
const MAX_SIZE: u64 = 1 << 16;

/// What an OME-XML description says of its first image.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Planes {
    /// Microns per pixel, horizontally and vertically.
    pub mpp: Option<(f64, f64)>,
    /// The channels, in order.
    pub channels: Vec<Channel>,
    /// Channels, Z sections and time points (each at least 1).
    pub sizes: (u64, u64, u64),
    /// The order of C, Z and T in the planes, fastest first (e.g. `CZT`).
    pub order: String,
}

impl Planes {
    /// A name for plane `index`: its channel's name (or number), with its Z section and
    /// time point when there are more than one.
    pub fn name(&self, index: usize) -> String {
        let mut at = index as u64;
        let (mut c, mut z, mut t) = (0, 0, 0);
        for axis in self.order.chars() {
            let (size, slot) = match axis {
                'C' => (self.sizes.0, &mut c),
                'Z' => (self.sizes.1, &mut z),
                _ => (self.sizes.2, &mut t),
            };
            *slot = at % size;
            at /= size;
        }
        let channel = self.channels.get(c as usize).and_then(|ch| ch.name.clone());
        let mut name = channel.unwrap_or_else(|| format!("C{c}"));
        if self.sizes.1 > 1 {
            name.push_str(&format!(" Z{z}"));
        }
        if self.sizes.2 > 1 {
            name.push_str(&format!(" T{t}"));
        }
        name
    }

    /// Puts the physical size and the channels into an image's metadata.
    pub fn describe(&self, metadata: &mut Metadata) {
        if let Some((x, y)) = self.mpp {
            metadata.pixels_per_cm = Some((1e4 / x, 1e4 / y));
        }
        metadata.channels.clone_from(&self.channels);
    }
}

/// The planes of an OME-TIFF whose first description is `description`, when it is OME-XML.
pub(crate) fn planes(description: &str) -> Option<Planes> {
    let text = description.trim_start();
    if !text.starts_with('<') || !text.contains("<OME") {
        return None;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut planes = Planes::default();
    let mut pixels = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"Pixels" if !pixels => {
                    pixels = true;
                    read_pixels(&e, &mut planes);
                }
                b"Channel" if pixels => planes.channels.push(channel(&e)),
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == b"Pixels" => break,
            Event::Eof => break,
            _ => {}
        }
    }
    pixels.then_some(planes)
}

/// The value of attribute `name` of an element, when it has one that decodes.
pub(crate) fn attribute(e: &BytesStart, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name.as_bytes())
        .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok())
        .map(|v| v.into_owned())
}

/// The sizes, plane order and physical size of a `Pixels` element.
fn read_pixels(e: &BytesStart, planes: &mut Planes) {
    let size = |n: &str| {
        attribute(e, n)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&s| (1..=MAX_SIZE).contains(&s))
            .unwrap_or(1)
    };
    planes.sizes = (size("SizeC"), size("SizeZ"), size("SizeT"));
    let order = attribute(e, "DimensionOrder").unwrap_or_default();
    let valid = order.len() == 5
        && order.starts_with("XY")
        && ["C", "Z", "T"].iter().all(|a| order.contains(a));
    planes.order = if valid {
        order[2..].to_string()
    } else {
        "CZT".into()
    };
    let length = |axis: &str| {
        let value = microns(&attribute(e, &format!("PhysicalSize{axis}"))?)?;
        let unit = attribute(e, &format!("PhysicalSize{axis}Unit"));
        let per_micron = match unit.as_deref().unwrap_or("µm") {
            "µm" | "um" => 1.0,
            "nm" => 1e-3,
            "mm" => 1e3,
            "cm" => 1e4,
            _ => return None,
        };
        microns(&(value * per_micron).to_string())
    };
    planes.mpp = length("X").zip(length("Y"));
}

/// A `Channel` element's name and colour (OME's signed 32-bit RGBA integer).
fn channel(e: &BytesStart) -> Channel {
    let colour = attribute(e, "Color")
        .and_then(|c| c.trim().parse::<i64>().ok())
        .filter(|c| (i32::MIN as i64..=u32::MAX as i64).contains(c))
        .map(|c| (c as u32).to_be_bytes());
    Channel {
        name: attribute(e, "Name").filter(|n| !n.trim().is_empty()),
        colour,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels DimensionOrder="XYZCT" SizeC="2" SizeZ="3" SizeT="1" PhysicalSizeX="325" PhysicalSizeXUnit="nm" PhysicalSizeY="0.5"><Channel Name="DAPI" Color="65535"/><Channel Name="" Color="-16776961"><LightPath/></Channel><TiffData/></Pixels></Image><Image><Pixels SizeC="9"/></Image></OME>"#;

    #[test]
    fn sizes_units_channels_and_plane_names() {
        let p = planes(XML).expect("ome");
        assert_eq!(p.mpp, Some((0.325, 0.5)));
        assert_eq!(p.sizes, (2, 3, 1));
        assert_eq!(p.channels[0].name.as_deref(), Some("DAPI"));
        assert_eq!(p.channels[0].colour, Some([0, 0, 255, 255]));
        assert_eq!(
            p.channels[1],
            Channel {
                name: None,
                colour: Some([255, 0, 0, 255])
            }
        );
        let names: Vec<String> = (0..6).map(|i| p.name(i)).collect();
        assert_eq!(
            names,
            ["DAPI Z0", "DAPI Z1", "DAPI Z2", "C1 Z0", "C1 Z1", "C1 Z2"]
        );
    }

    #[test]
    fn lying_or_broken_xml_gives_what_it_can() {
        assert_eq!(planes("ImageJ=1.52"), None);
        assert_eq!(planes("<OME><Image"), None);
        let lying = r#"<OME><Pixels SizeC="99999999999" DimensionOrder="XX" PhysicalSizeX="-1" PhysicalSizeY="1" PhysicalSizeYUnit="parsec"><Channel Color="1e99"/></Pixels></OME>"#;
        let p = planes(lying).expect("ome");
        assert_eq!((p.sizes, p.order.as_str(), p.mpp), ((1, 1, 1), "CZT", None));
        assert_eq!(p.channels, vec![Channel::default()]);
    }
}
