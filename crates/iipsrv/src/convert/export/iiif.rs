//! The IIIF side of a static tree: which image requests a level-0 tree must hold, read from
//! the server's own info.json, and that info.json rewritten for level 0.
//!
//! Level 0 (<https://iiif.io/api/image/3.0/compliance/>,
//! <https://iiif.io/api/image/2.1/compliance/>) asks for the `full` region at `max` (3.0) or
//! `full` (2.1) size, rotation 0, quality `default`, format `jpg`, every size listed in
//! `sizes`, and the tiles implied by `tiles`: for each scale factor, the regions and sizes of
//! the tile algorithm of the Image API's implementation notes, in the canonical size form
//! (3.0 `w,h`, 2.1 `w,`). The `sizes` written are ⌈width / s⌉ × ⌈height / s⌉ for each scale
//! factor s > 1, so that a client computing level sizes itself (OpenSeadragon) asks for the
//! same edge tiles and whole-image tiles as the tile algorithm gives.

use serde_json::{json, Map, Value};

/// The Image API 2 level-0 profile URI.
const V2_LEVEL0: &str = "http://iiif.io/api/image/2/level0.json";

/// The geometry of an image's tiles and sizes, from its info.json.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Grid {
    /// Full width.
    width: u32,
    /// Full height.
    height: u32,
    /// Tile width.
    tile_width: u32,
    /// Tile height.
    tile_height: u32,
    /// Scale factors, as listed.
    scale_factors: Vec<u32>,
    /// maxWidth and maxHeight when the server limits sizes below the full image.
    limit: Option<(u32, u32)>,
    /// Image API 3.0 (else 2.1).
    v3: bool,
}

/// A field of a JSON object as a positive u32.
fn number(doc: &Value, key: &str) -> Option<u32> {
    doc.get(key)?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
}

/// The server's maxWidth and maxHeight (3.0 at the top, 2.1 in the profile's second item)
/// when the full `width` × `height` passes them.
fn binding_limit(doc: &Value, v3: bool, width: u32, height: u32) -> Option<(u32, u32)> {
    let limits = if v3 { doc } else { doc.get("profile")?.get(1)? };
    let (mw, mh) = (number(limits, "maxWidth")?, number(limits, "maxHeight")?);
    (width > mw || height > mh).then_some((mw, mh))
}

impl Grid {
    /// The grid of the server's info.json `doc` (3.0 or 2.1); None when it lacks a field
    /// the tree needs (width, height, a tile with width and scale factors).
    pub(super) fn of(doc: &Value, v3: bool) -> Option<Grid> {
        let tile = doc.get("tiles")?.get(0)?;
        let tile_width = number(tile, "width")?;
        let scale_factors: Vec<u32> = tile
            .get("scaleFactors")?
            .as_array()?
            .iter()
            .filter_map(|s| s.as_u64().and_then(|s| u32::try_from(s).ok()))
            .filter(|&s| s > 0)
            .collect();
        let (width, height) = (number(doc, "width")?, number(doc, "height")?);
        (!scale_factors.is_empty()).then_some(Grid {
            width,
            height,
            tile_width,
            tile_height: number(tile, "height").unwrap_or(tile_width),
            scale_factors,
            limit: binding_limit(doc, v3, width, height),
            v3,
        })
    }

    /// The sizes the tree lists and holds: ⌈width / s⌉ × ⌈height / s⌉ for each scale factor
    /// s > 1 within the server's limit, smallest first.
    pub(super) fn sizes(&self) -> Vec<(u32, u32)> {
        let mut sizes: Vec<(u32, u32)> = self
            .scale_factors
            .iter()
            .filter(|&&s| s > 1)
            .map(|&s| (self.width.div_ceil(s), self.height.div_ceil(s)))
            .filter(|&(w, h)| self.limit.is_none_or(|(mw, mh)| w <= mw && h <= mh))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// A size in the version's canonical form: 3.0 `w,h`, 2.1 `w,`.
    fn size(&self, w: u32, h: u32) -> String {
        if self.v3 {
            format!("{w},{h}")
        } else {
            format!("{w},")
        }
    }

    /// The rests (after `NAME/`) of every image the tree holds: the full image, each size,
    /// then each scale factor's tiles.
    pub(super) fn rests(&self) -> Vec<String> {
        let full = if self.v3 { "max" } else { "full" };
        let mut rests = vec![format!("full/{full}/0/default.jpg")];
        for (w, h) in self.sizes() {
            rests.push(format!("full/{}/0/default.jpg", self.size(w, h)));
        }
        for &s in &self.scale_factors {
            self.tiles(s, &mut rests);
        }
        rests
    }

    /// The tiles at scale factor `s`, by the Image API's tile algorithm.
    fn tiles(&self, s: u32, rests: &mut Vec<String>) {
        let (span_w, span_h) = (
            self.tile_width.saturating_mul(s),
            self.tile_height.saturating_mul(s),
        );
        for y in (0..self.height).step_by(span_h as usize) {
            for x in (0..self.width).step_by(span_w as usize) {
                let (w, h) = (span_w.min(self.width - x), span_h.min(self.height - y));
                let size = self.size(w.div_ceil(s), h.div_ceil(s));
                rests.push(format!("{x},{y},{w},{h}/{size}/0/default.jpg"));
            }
        }
    }

    /// The server's info.json `doc` rewritten for the tree at `id`: level-0 profile, the
    /// tree's sizes and tiles, no extra features, formats or qualities; the size limits
    /// kept only when they bind (the full image is larger).
    pub(super) fn level0(&self, doc: &Value, id: &str, old_id: &str) -> Value {
        let mut m = doc.as_object().cloned().unwrap_or_default();
        for key in ["extraFeatures", "extraFormats", "extraQualities"] {
            m.remove(key);
        }
        if self.limit.is_none() || !self.v3 {
            for key in ["maxWidth", "maxHeight", "maxArea"] {
                m.remove(key);
            }
        }
        m.insert(if self.v3 { "id" } else { "@id" }.into(), json!(id));
        m.insert("profile".into(), self.profile(doc));
        let sizes: Vec<Value> = self
            .sizes()
            .into_iter()
            .map(|(w, h)| json!({"width": w, "height": h}))
            .collect();
        m.insert("sizes".into(), Value::Array(sizes));
        m.insert(
            "tiles".into(),
            json!([{"width": self.tile_width, "height": self.tile_height,
                    "scaleFactors": self.scale_factors}]),
        );
        if let Some(services) = m.get_mut("service") {
            rebase(services, old_id, id);
        }
        Value::Object(m)
    }

    /// The level-0 profile: 3.0 `level0`; 2.1 the level-0 URI, with the server's size
    /// limits when they bind.
    fn profile(&self, doc: &Value) -> Value {
        if self.v3 {
            return json!("level0");
        }
        let limits = doc.get("profile").and_then(|p| p.get(1));
        let mut kept = Map::new();
        for key in ["maxWidth", "maxHeight", "maxArea"] {
            if let (Some(v), true) = (limits.and_then(|l| l.get(key)), self.limit.is_some()) {
                kept.insert(key.into(), v.clone());
            }
        }
        if kept.is_empty() {
            json!([V2_LEVEL0])
        } else {
            json!([V2_LEVEL0, kept])
        }
    }
}

/// The ids of the services in `services` under the server's id `old` moved under `new`.
fn rebase(services: &mut Value, old: &str, new: &str) {
    let Some(list) = services.as_array_mut() else {
        return;
    };
    for service in list.iter_mut().filter_map(Value::as_object_mut) {
        for key in ["id", "@id"] {
            let moved = service
                .get(key)
                .and_then(Value::as_str)
                .and_then(|v| v.strip_prefix(old))
                .map(|rest| format!("{new}{rest}"));
            if let Some(v) = moved {
                service.insert(key.into(), json!(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3_doc() -> Value {
        json!({
            "@context": "http://iiif.io/api/image/3/context.json",
            "id": "http://localhost/iiif/3/a.tif", "type": "ImageService3",
            "protocol": "http://iiif.io/api/image", "profile": "level2",
            "width": 1001, "height": 600, "maxWidth": 5000, "maxHeight": 5000,
            "maxArea": 25000000u64, "sizes": [{"width": 500, "height": 300}],
            "tiles": [{"width": 256, "height": 256, "scaleFactors": [1, 2, 4]}],
            "extraFeatures": ["cors"], "extraFormats": ["png"], "extraQualities": ["gray"],
            "service": [{"id": "http://localhost/iiif/3/a.tif/physdim", "type": "Service"}]
        })
    }

    #[test]
    fn tiles_follow_the_tile_algorithm() {
        let grid = Grid::of(&v3_doc(), true).expect("grid");
        let rests = grid.rests();
        assert_eq!(rests[0], "full/max/0/default.jpg");
        assert_eq!(grid.sizes(), [(251, 150), (501, 300)]);
        // scale 1: 4×3 tiles, the last 233×88; scale 2: 2×2, the edge 489 → 245 wide;
        // scale 4: one tile of the whole image.
        assert_eq!(rests.len(), 1 + 2 + 12 + 4 + 1);
        assert!(rests.contains(&"768,512,233,88/233,88/0/default.jpg".to_string()));
        assert!(rests.contains(&"512,512,489,88/245,44/0/default.jpg".to_string()));
        assert!(rests.contains(&"0,0,1001,600/251,150/0/default.jpg".to_string()));
    }

    #[test]
    fn version_2_sizes_are_canonical_widths() {
        let doc = json!({"width": 300, "height": 200, "profile": [
            "http://iiif.io/api/image/2/level2.json", {"maxWidth": 5000}],
            "tiles": [{"width": 256, "scaleFactors": [1, 2]}]});
        let grid = Grid::of(&doc, false).expect("grid");
        assert_eq!(
            grid.rests(),
            [
                "full/full/0/default.jpg",
                "full/150,/0/default.jpg",
                "0,0,256,200/256,/0/default.jpg",
                "256,0,44,200/44,/0/default.jpg",
                "0,0,300,200/150,/0/default.jpg",
            ]
        );
        let level0 = grid.level0(&doc, "http://cdn/x", "http://localhost/iiif/2/x.tif");
        assert_eq!(level0["@id"], "http://cdn/x");
        assert_eq!(level0["profile"], json!([V2_LEVEL0]));
        assert_eq!(level0["sizes"], json!([{"width": 150, "height": 100}]));
    }

    #[test]
    fn level0_info_drops_what_a_static_tree_cannot_answer() {
        let grid = Grid::of(&v3_doc(), true).expect("grid");
        let doc = grid.level0(&v3_doc(), "http://cdn/a", "http://localhost/iiif/3/a.tif");
        assert_eq!(doc["id"], "http://cdn/a");
        assert_eq!(doc["profile"], "level0");
        for key in [
            "extraFeatures",
            "extraFormats",
            "extraQualities",
            "maxWidth",
            "maxArea",
        ] {
            assert!(doc.get(key).is_none(), "{key}");
        }
        assert_eq!(doc["service"][0]["id"], "http://cdn/a/physdim");
        assert_eq!(doc["tiles"][0]["scaleFactors"], json!([1, 2, 4]));
    }

    #[test]
    fn binding_limits_are_kept() {
        let mut doc = v3_doc();
        doc["width"] = json!(9000);
        let grid = Grid::of(&doc, true).expect("grid");
        let level0 = grid.level0(&doc, "http://cdn/a", "http://localhost/iiif/3/a.tif");
        assert_eq!(level0["maxWidth"], 5000);
        assert!(grid.sizes().iter().all(|&(w, _)| w <= 5000));
        assert!(Grid::of(&json!({"width": 10, "height": 10}), true).is_none());
    }
}
