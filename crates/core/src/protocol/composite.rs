//! Fluorescence composites: which planes of a multi-plane image (the channels of an
//! OME-TIFF, or the pages of any stack) are mixed into one RGB answer, each in its colour and
//! with its own input range (what 16-bit channels need). One text serves IIP (`CHN=`) and
//! IIIF (`?channels=`, an IIIF_EXTENSIONS extension): items `plane:RRGGBB[:min,max]`
//! separated by `;`, e.g. `0:0000ff;2:00ff00:100,4000`.
//!
//! The parser only names the planes ([`View::planes`]) and describes the mix in the neutral
//! [`Process`]: each plane's range as MINMAX, the colours as a colour twist whose inputs are
//! clipped to 0-1 first, so that a sample outside its range adds nothing or its full colour.

use super::iip_process::MAX_TWIST_SIDE;
use crate::error::{RequestError, Result};
use crate::view::{ChannelRange, Process, View};

/// A parsed composite: the planes in order, with their colours and ranges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Composite {
    /// The planes (stack pages) mixed, in order.
    pub planes: Vec<u32>,
    /// Each plane's colour, red, green, blue.
    colours: Vec<[u8; 3]>,
    /// Each plane's input range, when the request sets one (else the image's).
    ranges: Vec<Option<(f32, f32)>>,
}

fn bad(a: &str, why: &str) -> RequestError {
    let shown: String = a.chars().take(80).collect();
    RequestError::bad(format!("composite: {why}: {shown}"))
}

/// The `channels` query parameter of an image request of IIIF, DeepZoom or Zoomify (an
/// IIIF_EXTENSIONS extension; OpenSeadragon passes a `.dzi`'s query on to its tiles), e.g.
/// `.../full/max/0/default.png?channels=0:0000ff;1:00ff00:100,4000`. Refused (400) when the
/// extensions are off rather than ignored, since the answer would silently be another image.
pub fn from_query(query: &str, enabled: bool) -> Result<Option<Composite>> {
    let Some(value) = query.split('&').find_map(|kv| kv.strip_prefix("channels=")) else {
        return Ok(None);
    };
    if !enabled {
        return Err(RequestError::bad(
            "the channels parameter needs IIIF_EXTENSIONS=1",
        ));
    }
    parse(&super::decode(value, "channels")?).map(Some)
}

/// Parses `plane:RRGGBB[:min,max];...`: at most 16 planes, each named once.
pub fn parse(a: &str) -> Result<Composite> {
    let mut c = Composite::default();
    for item in a.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let mut parts = item.splitn(3, ':');
        let plane = parts
            .next()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .ok_or_else(|| bad(item, "bad plane number"))?;
        let colour = parts
            .next()
            .and_then(colour)
            .ok_or_else(|| bad(item, "bad colour (RRGGBB in hex)"))?;
        let range = parts.next().map(|r| range(r, item)).transpose()?;
        if c.planes.contains(&plane) {
            return Err(bad(item, "plane named twice"));
        }
        c.planes.push(plane);
        c.colours.push(colour);
        c.ranges.push(range);
    }
    if c.planes.is_empty() || c.planes.len() > MAX_TWIST_SIDE {
        return Err(bad(a, "between 1 and 16 planes are mixed"));
    }
    Ok(c)
}

/// `RRGGBB` (an optional `#` before it) as red, green, blue.
fn colour(s: &str) -> Option<[u8; 3]> {
    let hex = s.trim().trim_start_matches('#');
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(hex, 16).ok()?;
    let [_, r, g, b] = v.to_be_bytes();
    Some([r, g, b])
}

/// `min,max`: finite numbers, min below max.
fn range(s: &str, item: &str) -> Result<(f32, f32)> {
    let number = |v: &str| v.trim().parse::<f32>().ok().filter(|v| v.is_finite());
    s.split_once(',')
        .and_then(|(lo, hi)| Some((number(lo)?, number(hi)?)))
        .filter(|(lo, hi)| lo < hi)
        .ok_or_else(|| bad(item, "bad range (min,max with min below max)"))
}

impl Composite {
    /// Makes `view` this composite: its planes, their ranges and the colour mix (which
    /// replaces any colour twist the request gave).
    pub fn apply(&self, view: &mut View) {
        view.planes.clone_from(&self.planes);
        apply_process(self, &mut view.process);
    }
}

/// The ranges, clipping and colour twist of composite `c` in processing `p`.
fn apply_process(c: &Composite, p: &mut Process) {
    let ranges = c.ranges.iter().enumerate();
    p.ranges.extend(ranges.filter_map(|(i, r)| {
        r.map(|(min, max)| ChannelRange {
            channel: Some(i),
            min,
            max,
        })
    }));
    let row = |k: usize| c.colours.iter().map(|rgb| rgb[k] as f32 / 255.0).collect();
    p.twist = Some((0..3).map(row).collect());
    p.clip = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parameter_only_with_extensions() {
        assert_eq!(from_query("a=1", false).ok(), Some(None));
        let c = from_query("x=1&channels=0:ff0000%3B1:00ff00", true).expect("parses");
        assert_eq!(c.map(|c| c.planes), Some(vec![0, 1]));
        let off = from_query("channels=0:ff0000", false).map_err(|e| e.status());
        assert_eq!(off.err(), Some(400));
        assert!(from_query("channels=0:red", true).is_err());
    }

    #[test]
    fn planes_colours_and_ranges() {
        let c = parse("2:ff0000:100,4000; 0:#00FF80").expect("parses");
        assert_eq!(c.planes, [2, 0]);
        assert_eq!(c.colours, [[255, 0, 0], [0, 255, 128]]);
        assert_eq!(c.ranges, [Some((100.0, 4000.0)), None]);
        let mut p = Process::default();
        apply_process(&c, &mut p);
        assert_eq!(p.ranges.len(), 1);
        assert_eq!(p.ranges[0].channel, Some(0));
        let twist = p.twist.expect("twist");
        assert_eq!(twist[0], [1.0, 0.0]);
        assert_eq!(twist[2], [0.0, 128.0 / 255.0]);
        assert!(p.clip);
    }

    #[test]
    fn malformed_composites_are_refused() {
        let long = (0..17).map(|i| format!("{i}:ffffff")).collect::<Vec<_>>();
        for a in [
            "",
            "x:ff0000",
            "0",
            "0:ff00",
            "0:gg0000",
            "0:ff0000:5",
            "0:ff0000:9,1",
            "0:ff0000:nan,1",
            "0:ff0000;0:00ff00",
            &long.join(";"),
        ] {
            assert_eq!(parse(a).map_err(|e| e.status()), Err(400), "{a}");
        }
    }
}
