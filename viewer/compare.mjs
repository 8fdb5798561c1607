// Screenshots of the viewer compared with the server's own rendering of the same image area,
// shared by the browser tests (viewer/e2e.mjs, viewer/auth-e2e.mjs). A match is a mean
// difference under 3 grey levels per channel (1.2-1.6 seen; a view shifted by 16 pixels
// differs by 4.3), and a screenshot that is not blank has a spread over 20 and over 100
// colours.
import { writeFileSync } from "node:fs";

/** Mean absolute difference per channel between two PNG/JPEG images of one size, and the
 * screenshot's own spread (standard deviation) and count of distinct colours. */
export async function compare(page, shot, reference) {
  return page.evaluate(async ([a, b]) => {
    const load = (src) => new Promise((resolve, reject) => {
      const img = new Image();
      img.crossOrigin = "anonymous";
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error(`could not load ${src.slice(0, 300)}`));
      img.src = src;
    });
    const pixels = (img) => {
      const c = document.createElement("canvas");
      c.width = img.width;
      c.height = img.height;
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      return ctx.getImageData(0, 0, img.width, img.height).data;
    };
    const [ia, ib] = [await load(a), await load(b)];
    const [pa, pb] = [pixels(ia), pixels(ib)];
    let diff = 0, sum = 0, sq = 0, n = 0;
    const colours = new Set();
    for (let i = 0; i < pa.length; i += 4) {
      for (let c = 0; c < 3; c++) {
        diff += Math.abs(pa[i + c] - pb[i + c]);
        sum += pa[i + c];
        sq += pa[i + c] * pa[i + c];
        n++;
      }
      colours.add((pa[i] >> 3) << 10 | (pa[i + 1] >> 3) << 5 | (pa[i + 2] >> 3));
    }
    const mean = sum / n;
    return {
      sizes: [ia.width, ia.height, ib.width, ib.height],
      meanDiff: diff / n,
      stddev: Math.sqrt(sq / n - mean * mean),
      colours: colours.size,
    };
  }, [shot, reference]);
}

/** The server's rendering of what the viewer shows: the image area under the viewer, at the
 * viewer's size in pixels, as one IIIF region request on the image service `service` (its
 * id), or for IIP (`service` is then the `?FIF=<id>` URL) one RGN+WID request. */
export async function referenceUrl(page, protocol, service) {
  return page.evaluate(([protocol, service]) => {
    const item = viewer.world.getItemAt(0);
    const r = item.viewportToImageRectangle(viewer.viewport.getBounds(true));
    const el = document.getElementById("viewer");
    const [w, h] = [el.clientWidth, el.clientHeight];
    const x = Math.round(r.x), y = Math.round(r.y);
    const rw = Math.round(r.width), rh = Math.round(r.height);
    if (protocol === "iip") {
      const size = item.getContentSize();
      const rgn = [x / size.x, y / size.y, rw / size.x, rh / size.y].map((v) => v.toFixed(6)).join(",");
      return `${service}&WID=${w}&HEI=${h}&RGN=${rgn}&CVT=jpeg`;
    }
    return `${service}/${x},${y},${rw},${rh}/${w},${h}/0/default.jpg`;
  }, [protocol, service]);
}

/** Hides the viewer's navigator and buttons (not part of the image; at once, not by
 * OpenSeadragon's fade, which leaves them shown for seconds after the mouse was over the
 * viewer), screenshots the viewer
 * into `path` and compares it with the rendering of the same area by `service` (see
 * referenceUrl), fetched from inside the page (with its cookies and headers); then checks,
 * with `check(ok, what)`, that the screenshot is not blank and matches. */
export async function checkScreenshot(page, check, label, protocol, service, path) {
  await page.evaluate(() => {
    for (const control of viewer.controls) control.setVisible(false);
    if (viewer.navigator) viewer.navigator.element.style.display = "none";
  });
  const shot = await page.locator("#viewer").screenshot({ animations: "disabled" });
  writeFileSync(path, shot);
  const ref = await referenceUrl(page, protocol, service);
  const stats = await compare(page, `data:image/png;base64,${shot.toString("base64")}`, ref);
  check(stats.stddev > 20 && stats.colours > 100,
    `${label}: screenshot ${path} is not blank (spread ${stats.stddev.toFixed(1)}, ${stats.colours} colours)`);
  check(stats.sizes[0] === stats.sizes[2] && stats.meanDiff < 3,
    `${label}: screenshot matches ${ref} ` +
    `(mean difference ${stats.meanDiff.toFixed(2)} grey levels, sizes ${stats.sizes.join("x")})`);
}
