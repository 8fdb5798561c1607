//! IIP spectral answers: SPECTRA (the value of one pixel in every band, XML) and PFL (the
//! values along a horizontal line, JSON), in the original's text layout. Pure: arguments
//! in, text out; the handler reads the pixels.

use crate::error::{RequestError, Result};

/// SPECTRA=resolution,tile,x,y: a pixel given inside one tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpectraQuery {
    /// Resolution number (0 = smallest level).
    pub resolution: u32,
    /// Tile index at that resolution, row-major.
    pub tile: u64,
    /// Column inside the tile.
    pub x: u32,
    /// Row inside the tile.
    pub y: u32,
}

/// PFL=resolution:x1,y1-x2,y2: a horizontal line of pixels at one resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileQuery {
    /// Resolution number (0 = smallest level).
    pub resolution: u32,
    /// Start column.
    pub x1: u32,
    /// Row.
    pub y1: u32,
    /// End column (exclusive).
    pub x2: u32,
}

/// Most values one PFL answer carries (pixels of the line).
pub(crate) const MAX_PROFILE: u32 = 65_536;

fn bad(cmd: &str, a: &str) -> RequestError {
    let shown: String = a.chars().take(80).collect();
    RequestError::bad(format!("IIP: bad argument to {cmd}: {shown}"))
}

fn numbers(a: &str, cmd: &str, seps: &[char]) -> Result<Vec<u64>> {
    a.split(seps)
        .map(|v| v.trim().parse::<u64>().map_err(|_| bad(cmd, a)))
        .collect()
}

/// Parses SPECTRA's argument.
pub(crate) fn parse_spectra(a: &str) -> Result<SpectraQuery> {
    match numbers(a, "SPECTRA", &[','])?.as_slice() {
        [r, t, x, y] => Ok(SpectraQuery {
            resolution: u32::try_from(*r).map_err(|_| bad("SPECTRA", a))?,
            tile: *t,
            x: u32::try_from(*x).map_err(|_| bad("SPECTRA", a))?,
            y: u32::try_from(*y).map_err(|_| bad("SPECTRA", a))?,
        }),
        _ => Err(bad("SPECTRA", a)),
    }
}

/// Parses PFL's argument; the line must run left to right, at most [`MAX_PROFILE`] long.
pub(crate) fn parse_profile(a: &str) -> Result<ProfileQuery> {
    let v = numbers(a, "PFL", &[':', ',', '-'])?;
    let [r, x1, y1, x2, _y2] = v.as_slice() else {
        return Err(bad("PFL", a));
    };
    let small = |n: u64| u32::try_from(n).map_err(|_| bad("PFL", a));
    let q = ProfileQuery {
        resolution: small(*r)?,
        x1: small(*x1)?,
        y1: small(*y1)?,
        x2: small(*x2)?,
    };
    if q.x2 <= q.x1 || q.x2 - q.x1 > MAX_PROFILE {
        return Err(bad("PFL", a));
    }
    Ok(q)
}

/// A number as C++ streams print it by default (`%g`, six significant digits).
pub(crate) fn fmt_g(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else {
            format!("{v}")
        };
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-5..6).contains(&exp) {
        let s = format!("{:.5e}", v);
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = mant.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    let s = format!("{:.*}", decimals, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The SPECTRA answer: one point per band, `(wavelength name, reflectance)`; values are
/// written with six decimals, as the original writes them.
pub fn spectra_xml(points: &[(String, f64)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<spectra>\n");
    for (name, value) in points {
        out.push_str(&format!(
            "\t<point>\n\t\t<wavelength>{name}</wavelength>\n\t\t<reflectance>{value:.6}</reflectance>\n\t</point>\n"
        ));
    }
    out.push_str("</spectra>\n");
    out
}

/// The PFL answer: the samples of the line, channels interleaved.
pub fn profile_json(values: &[f64]) -> String {
    let list: Vec<String> = values.iter().map(|v| fmt_g(*v)).collect();
    format!("{{\n\t\"profile\": [{}]\n}}", list.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_like_the_original() {
        assert_eq!(
            parse_spectra("1,0,10,10").ok(),
            Some(SpectraQuery {
                resolution: 1,
                tile: 0,
                x: 10,
                y: 10
            })
        );
        assert!(parse_spectra("1,0,10").is_err());
        let p = parse_profile("0:0,0-8,0").ok();
        assert_eq!(p.map(|p| (p.x1, p.x2)), Some((0, 8)));
        assert!(parse_profile("0:8,0-2,0").is_err());
        assert_eq!(fmt_g(50.0 / 255.0), "0.196078");
        assert_eq!(fmt_g(100.0 / 255.0), "0.392157");
        assert_eq!(fmt_g(200.0), "200");
        assert_eq!(fmt_g(1234567.0), "1.23457e+06");
        assert_eq!(
            profile_json(&[0.0, 1.0, 2.0]),
            "{\n\t\"profile\": [0,1,2]\n}"
        );
        assert!(spectra_xml(&[("0".into(), 0.5)])
            .contains("<wavelength>0</wavelength>\n\t\t<reflectance>0.500000</reflectance>"));
    }
}
