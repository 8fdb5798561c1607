//! Arguments of the IIP processing commands (GAM, CNT, MINMAX, SHD, CMP, CTW, CNV), as
//! the original parses them, into the neutral [`Process`] description. Pure text parsing.
//!
//! Where the original silently ignores an argument it cannot use (an unknown colour map
//! name), so do we; malformed numbers get a 400 with the reason, where the original would
//! read them as 0.

use crate::error::{RequestError, Result};
use crate::view::{ChannelRange, Colormap, Contrast, Gamma, Process};

/// Largest CTW matrix side (rows are output channels, columns input channels).
pub(crate) const MAX_TWIST_SIDE: usize = 16;

fn bad(cmd: &str, arg: &str) -> RequestError {
    let shown: String = arg.chars().take(80).collect();
    RequestError::bad(format!("IIP: bad argument to {cmd}: {shown}"))
}

fn number(s: &str, cmd: &str, arg: &str) -> Result<f32> {
    s.trim()
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| bad(cmd, arg))
}

/// GAM: a non-negative exponent, or `log` / `logarithm`.
pub fn gamma(a: &str) -> Result<Gamma> {
    match a.trim().to_ascii_lowercase().as_str() {
        "log" | "logarithm" => Ok(Gamma::Log),
        _ => {
            let g = number(a, "GAM", a)?;
            if g < 0.0 {
                return Err(bad("GAM", a));
            }
            Ok(Gamma::Power(g))
        }
    }
}

/// CNT: a non-negative factor, `st` / `stretch`, or `eq` / `equalization`.
pub fn contrast(p: &mut Process, a: &str) -> Result<()> {
    match a.trim().to_ascii_lowercase().as_str() {
        "eq" | "equalization" | "equalisation" => p.equalise = true,
        "st" | "stretch" => p.contrast = Some(Contrast::Stretch),
        _ => {
            let c = number(a, "CNT", a)?;
            if c < 0.0 {
                return Err(bad("CNT", a));
            }
            p.contrast = Some(Contrast::Factor(c));
        }
    }
    Ok(())
}

/// MINMAX: `channel:min,max`, `-:min,max` (every channel) or `min,max` (every channel).
pub(crate) fn minmax(a: &str) -> Result<ChannelRange> {
    let (channel, range) = match a.split_once(':') {
        Some(("-", r)) => (None, r),
        Some((c, r)) => (Some(c.trim().parse().map_err(|_| bad("MINMAX", a))?), r),
        None => (None, a),
    };
    let (lo, hi) = range.split_once(',').ok_or_else(|| bad("MINMAX", a))?;
    Ok(ChannelRange {
        channel,
        min: number(lo, "MINMAX", a)?,
        max: number(hi, "MINMAX", a)?,
    })
}

/// SHD: `azimuth,elevation` in whole degrees.
pub(crate) fn shade(a: &str) -> Result<(i32, i32)> {
    let (h, v) = a.split_once(',').ok_or_else(|| bad("SHD", a))?;
    let angle = |s: &str| s.trim().parse::<i32>().map_err(|_| bad("SHD", a));
    Ok((angle(h)?, angle(v)?))
}

/// CMP: a colour map name; unknown names (including `grey`) mean no map, as in the original.
pub fn colormap(a: &str) -> Option<Colormap> {
    match a.trim().to_ascii_lowercase().as_str() {
        "hot" => Some(Colormap::Hot),
        "cold" => Some(Colormap::Cold),
        "jet" => Some(Colormap::Jet),
        "red" => Some(Colormap::Red),
        "green" => Some(Colormap::Green),
        "blue" => Some(Colormap::Blue),
        _ => None,
    }
}

/// The text between `[` and `]` (or all of it without brackets).
fn bracketed(a: &str) -> &str {
    let inner = a.trim();
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    inner.strip_suffix(']').unwrap_or(inner)
}

/// CTW: `[a,b,c;d,e,f;...]`, one row per output channel.
pub(crate) fn twist(a: &str) -> Result<Vec<Vec<f32>>> {
    let rows: Vec<Vec<f32>> = bracketed(a)
        .split(';')
        .map(|row| row.split(',').map(|v| number(v, "CTW", a)).collect())
        .collect::<Result<_>>()?;
    let too_big = rows.len() > MAX_TWIST_SIDE || rows.iter().any(|r| r.len() > MAX_TWIST_SIDE);
    if rows.is_empty() || too_big {
        return Err(bad("CTW", a));
    }
    Ok(rows)
}

/// CNV: a named kernel or a square kernel of odd side up to 5, row-major.
pub(crate) fn convolution(a: &str) -> Result<Vec<f32>> {
    let inner = bracketed(a);
    let named: Option<[f32; 9]> = match inner.to_ascii_lowercase().as_str() {
        "sobel" => Some([-1., 0., 1., -2., 0., 2., -1., 0., 1.]),
        "prewitt" => Some([1., 0., -1., 1., 0., -1., 1., 0., -1.]),
        "scharr" => Some([-3., 0., 3., -10., 0., 10., -3., 0., 3.]),
        "laplace" => Some([-1., -1., -1., -1., 8., -1., -1., -1., -1.]),
        "gaussian" => Some([1., 2., 1., 2., 4., 2., 1., 2., 1.]),
        "sharpen" => Some([0., -1., 0., -1., 5., -1., 0., -1., 0.]),
        "emboss" => Some([-2., -1., 0., -1., 1., 1., 0., 1., 2.]),
        _ => None,
    };
    if let Some(k) = named {
        return Ok(k.to_vec());
    }
    let k: Vec<f32> = inner
        .split(',')
        .map(|v| number(v, "CNV", a))
        .collect::<Result<_>>()?;
    match k.len() {
        1 | 9 | 25 => Ok(k),
        _ => Err(RequestError::bad(
            "IIP: CNV needs a square kernel of odd side, at most 5x5",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_originals_forms() {
        assert_eq!(gamma("LOG").ok(), Some(Gamma::Log));
        assert_eq!(gamma("0.5").ok(), Some(Gamma::Power(0.5)));
        assert!(gamma("abc").is_err());
        let mut p = Process::default();
        contrast(&mut p, "st").ok();
        contrast(&mut p, "eq").ok();
        assert_eq!(p.contrast, Some(Contrast::Stretch));
        assert!(p.equalise);
        let r = minmax("1:900,1500").ok();
        assert_eq!(
            r.map(|r| (r.channel, r.min, r.max)),
            Some((Some(1), 900.0, 1500.0))
        );
        assert_eq!(minmax("-:0,10").ok().map(|r| r.channel), Some(None));
        assert_eq!(shade("45,30").ok(), Some((45, 30)));
        assert_eq!(colormap("Jet"), Some(Colormap::Jet));
        assert_eq!(colormap("grey"), None);
        assert_eq!(
            twist("[1,0;0.5,0.5]").ok(),
            Some(vec![vec![1.0, 0.0], vec![0.5, 0.5]])
        );
        assert_eq!(convolution("sobel").map(|k| k.len()).ok(), Some(9));
        assert!(convolution("[1,2,3,4]").is_err());
    }
}
