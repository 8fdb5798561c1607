// End-to-end test of the viewer in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): for each protocol, opens /viewer/<id>?protocol=..., waits for the first
// view, zooms and pans, and checks
//   - the tiles: every tile request answered 200 with an image, none failed in the viewer,
//     and the zoomed view fetched tiles of a deeper level than the first view;
//   - the picture: a screenshot of the viewer (saved as <out>/viewer-<protocol>.png) is not
//     blank, and matches the server's own rendering of the same image area (one IIIF or IIP
//     region request) to a mean difference under 3 grey levels (1.2-1.6 seen; a view
//     shifted by 16 pixels differs by 4.3): tiles drawn, and drawn in the right places.
// With STATIC_URL and NAME, the same checks instead for the static trees of the image
// (`iipsrv convert --static`, named NAME) served as plain files at STATIC_URL, opened by
// viewer/static.html there (deepzoom/, zoomify/, iiif3/, iiif2/ beside it, OpenSeadragon in
// osd/); the references still come from the server at BASE_URL, which must send CORS headers.
// Usage: node viewer/e2e.mjs BASE_URL IMAGE_ID OUT_DIR [STATIC_URL NAME]
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { checkScreenshot } from "./compare.mjs";

const [base, id, out, staticUrl, name] = process.argv.slice(2);
if (!base || !id || !out || (staticUrl && !name)) {
  console.error("usage: node viewer/e2e.mjs BASE_URL IMAGE_ID OUT_DIR [STATIC_URL NAME]");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

/** Which requests are tiles, per protocol. */
const tilePattern = {
  iiif: /\/default\.jpg$/,
  deepzoom: /_files\/\d+\/\d+_\d+\.jpg$/,
  zoomify: /TileGroup\d+\/\d+-\d+-\d+\.jpg$/,
  iip: /[?&]JTL=\d+,\d+$/,
};

/** The level a tile URL asks for, to tell deeper tiles apart (larger is more detailed);
 * `width` is the image's. */
function tileDepth(protocol, url, width) {
  switch (protocol) {
    case "iiif": {
      // Source pixels per output pixel (region width / size width): smaller is deeper.
      const m = url.match(/\/(full|\d+,\d+,(\d+),\d+)\/(\d+),/);
      return m ? -Math.round(Math.log2(Number(m[2] || width) / Number(m[3]))) : -99;
    }
    case "deepzoom": return Number(url.match(/_files\/(\d+)\//)[1]);
    case "zoomify": return Number(url.match(/TileGroup\d+\/(\d+)-/)[1]);
    default: return Number(url.match(/JTL=(\d+),/)[1]);
  }
}

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

/** Requests sent and not yet answered, per page (to say what a timeout waited for). */
const pending = new Map();
function track(page) {
  const open = new Set();
  pending.set(page, open);
  page.on("request", (r) => open.add(r));
  page.on("requestfinished", (r) => open.delete(r));
  page.on("requestfailed", (r) => open.delete(r));
}

/** Waits until the viewer has drawn everything it asked for and no request has been open
 * for half a second (Playwright's "networkidle" is a one-time page-load event, so it
 * cannot tell when the tiles of a zoom have arrived). */
async function settle(page) {
  const open = pending.get(page);
  const deadline = Date.now() + 30000;
  let quietSince = null;
  while (Date.now() < deadline) {
    const loaded = await page.evaluate(
      // `window.viewer` is the <div id="viewer"> element until the page makes its viewer.
      () => !!(window.viewer && viewer.world) && viewer.world.getItemCount() > 0 &&
        viewer.world.getItemAt(0).getFullyLoaded(),
    );
    if (loaded && open.size === 0) {
      quietSince ??= Date.now();
      if (Date.now() - quietSince >= 500) return;
    } else {
      quietSince = null;
    }
    await page.waitForTimeout(100);
  }
  const urls = [...open].map((r) => r.url());
  throw new Error(`the viewer did not settle in 30 s; requests still open: ${urls.join(" ") || "none"}`);
}

/** Opens the viewer page `url` showing the image through `protocol` and runs the checks,
 * naming them with `label`. */
async function run(browser, protocol, url, label) {
  const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
  track(page);
  const tiles = [];
  page.on("response", (r) => {
    if (tilePattern[protocol].test(r.url())) {
      tiles.push({ url: r.url(), status: r.status(), type: r.headers()["content-type"] });
    }
  });
  page.on("pageerror", (e) => check(false, `${label}: page error ${e.message}`));
  await page.goto(url);
  await settle(page);
  const width = await page.evaluate(() => viewer.world.getItemAt(0).source.dimensions.x);
  const depth = (list) => Math.max(...list.map((t) => tileDepth(protocol, t.url, width)));
  const first = tiles.length;
  const firstDepth = depth(tiles);
  const file = label.replace(/ /g, "-");
  await page.locator("#viewer").screenshot({ path: `${out}/viewer-${file}-home.png` });
  check(first > 0, `${label}: first view loaded ${first} tiles`);

  // Zoom to one image pixel per screen pixel, then pan a little right and down.
  await page.evaluate(() => {
    viewer.viewport.zoomTo(viewer.world.getItemAt(0).imageToViewportZoom(1), null, true);
    viewer.viewport.panBy(new OpenSeadragon.Point(0.07, 0.04), true);
    viewer.viewport.applyConstraints(true);
  });
  await settle(page);
  const zoomed = tiles.slice(first);
  const zoomedDepth = depth(zoomed);
  check(zoomed.length > 0, `${label}: zoom and pan loaded ${zoomed.length} more tiles`);
  check(zoomedDepth > firstDepth, `${label}: zoomed tiles are of a deeper level (${zoomedDepth} > ${firstDepth})`);
  const bad = tiles.filter((t) => t.status !== 200 || !/^image\//.test(t.type || ""));
  check(bad.length === 0, `${label}: all ${tiles.length} tile answers are 200 images` +
    (bad.length ? ` (first bad: ${bad[0].status} ${bad[0].url})` : ""));
  const events = await page.evaluate(() => window.tileEvents);
  check(events.failed === 0 && events.loaded > 0,
    `${label}: viewer drew ${events.loaded} tiles, ${events.failed} failed`);

  const enc = encodeURIComponent(id);
  const service = protocol === "iip" ? `${base}/?FIF=${enc}` : `${base}/iiif/${enc}`;
  await checkScreenshot(page, check, label, protocol, service, `${out}/viewer-${file}.png`);
  await page.close();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
});
try {
  if (staticUrl) {
    for (const [protocol, layout] of [["deepzoom", "deepzoom"], ["zoomify", "zoomify"],
      ["iiif", "iiif3"], ["iiif", "iiif2"]]) {
      const page = `${staticUrl}/static.html?layout=${layout}&name=${encodeURIComponent(name)}`;
      await run(browser, protocol, page, `static ${layout}`);
    }
  } else {
    for (const protocol of ["iiif", "deepzoom", "zoomify", "iip"]) {
      await run(browser, protocol, `${base}/viewer/${encodeURIComponent(id)}?protocol=${protocol}`, protocol);
    }
  }
} finally {
  await browser.close();
}
console.log(`viewer: ${failures.length ? "FAILED " + failures.length : "all checks passed"}`);
process.exit(failures.length ? 1 : 0);
