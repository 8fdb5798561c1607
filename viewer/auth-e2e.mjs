// End-to-end test of the IIIF Authorization Flow 2.0 in the viewer, in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core), against a server running the
// example policy (examples/auth-policy.toml) with TRUSTED_PROXIES covering the browser. The
// viewer starts from IIIF Presentation manifests (`/viewer?manifest=<URL>`), which this test
// serves at http://manifests.test/ (Playwright routes, with CORS), naming the server's image
// services:
//   - manuscripts/<id> (degraded, active login), from a Presentation 3 manifest: the viewer
//     first shows the probe's substitute (the degraded image service) and the access
//     service's heading; its view at one degraded pixel per screen pixel matches the degraded
//     service's own rendering of the same area; the button opens the login page, which is
//     filled in and closes itself; the token service gives an access token, the probe says
//     200 and the full image is shown: zoomed to one image pixel per screen pixel it draws
//     full-resolution tiles, all answered 200, and matches the full service's rendering
//     (fetched from inside the page, with the session cookie);
//   - staff/<id> (external): refused (401) without the proxy's identity header, denied by
//     the probe from a manifest; from a Presentation 3 manifest with X-Remote-User, shown in
//     full and matching the full service's rendering;
//   - patients/<id> (kiosk): the same from outside and inside (X-Forwarded-For) the kiosk
//     addresses, from a Presentation 2 manifest;
//   - manifests that fail (HTTP 404, no image service) give a clear message in the page, in
//     which the manifest's address is text, never markup.
// Screenshots compared as viewer/e2e.mjs does (viewer/compare.mjs). Screenshots go to
// OUT_DIR. Usage: node viewer/auth-e2e.mjs BASE_URL IMAGE_NAME OUT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { checkScreenshot } from "./compare.mjs";

const [base, name, out] = process.argv.slice(2);
if (!base || !name || !out) {
  console.error("usage: node viewer/auth-e2e.mjs BASE_URL IMAGE_NAME OUT_DIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

/** The test's manifests' site. */
const MANIFESTS = "http://manifests.test";
const CORS = { "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "*" };

/** The manifest (Presentation `version` "p3" or "p2") of image `id` on the server. */
function manifestUrl(version, id) {
  return `${MANIFESTS}/${version}/${encodeURIComponent(id)}.json`;
}

/** A Presentation 3 manifest of one canvas painted with the image service `service`. The
 * canvas's size is not the image's: the viewer takes the image service's. */
function presentation3(url, service) {
  return {
    "@context": "http://iiif.io/api/presentation/3/context.json",
    id: url, type: "Manifest", label: { en: ["A protected image"] },
    items: [{
      id: `${url}/canvas/1`, type: "Canvas", width: 1000, height: 1000,
      items: [{
        id: `${url}/page/1`, type: "AnnotationPage",
        items: [{
          id: `${url}/annotation/1`, type: "Annotation", motivation: "painting", target: `${url}/canvas/1`,
          body: {
            id: `${service}/full/max/0/default.jpg`, type: "Image", format: "image/jpeg",
            service: [{ id: service, type: "ImageService3", profile: "level2" }],
          },
        }],
      }],
    }],
  };
}

/** The same as a Presentation 2 manifest (an image service 2 block, by @id). */
function presentation2(url, service) {
  const canvas = `${url}/canvas/1`;
  return {
    "@context": "http://iiif.io/api/presentation/2/context.json",
    "@id": url, "@type": "sc:Manifest", label: "A protected image",
    sequences: [{
      "@type": "sc:Sequence",
      canvases: [{
        "@id": canvas, "@type": "sc:Canvas", label: "1", width: 1000, height: 1000,
        images: [{
          "@type": "oa:Annotation", motivation: "sc:painting", on: canvas,
          resource: {
            "@id": `${service}/full/full/0/default.jpg`, "@type": "dctypes:Image", format: "image/jpeg",
            service: {
              "@context": "http://iiif.io/api/image/2/context.json", "@id": service,
              profile: "http://iiif.io/api/image/2/level2.json",
            },
          },
        }],
      }],
    }],
  };
}

/** Answers the page's requests to the manifests' site: /p3/<id>.json, /p2/<id>.json, a
 * manifest without images at /none.json, 404 for anything else. */
function serveManifest(route) {
  const url = new URL(route.request().url());
  const json = (body) => route.fulfill({ headers: CORS, contentType: "application/json", body: JSON.stringify(body) });
  const m = url.pathname.match(/^\/(p2|p3)\/([^/]+)\.json$/);
  if (m) {
    const service = `${base}/iiif/${m[2]}`;
    return json(m[1] === "p3" ? presentation3(url.href, service) : presentation2(url.href, service));
  }
  if (url.pathname === "/none.json") return json({ ...presentation3(url.href, ""), items: [] });
  return route.fulfill({ status: 404, headers: CORS, body: "no such manifest" });
}

/** A browser context (1024 × 768) sending `headers`, with the manifests' site. */
async function newContext(browser, headers = {}) {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 }, extraHTTPHeaders: headers });
  await context.route(`${MANIFESTS}/**`, serveManifest);
  return context;
}

/** The manifest viewer's path for a manifest URL. */
function manifestViewer(url) {
  return `/viewer?manifest=${encodeURIComponent(url)}`;
}

/** Waits until the viewer's image has every tile it wants drawn (at most 30 s), after
 * the frames that follow a change of view have asked for them. */
async function settle(page) {
  await page.waitForTimeout(800);
  await page.waitForFunction(() => window.viewer && viewer.world && viewer.world.getItemCount() > 0 &&
    viewer.world.getItemAt(0).getFullyLoaded(), null, { timeout: 30000 });
  await page.waitForTimeout(300);
}

/** Zooms to one image pixel per screen pixel, centred. */
async function zoomToPixels(page) {
  await page.evaluate(() => {
    viewer.viewport.zoomTo(viewer.world.getItemAt(0).imageToViewportZoom(1), null, true);
    viewer.viewport.applyConstraints(true);
  });
  await settle(page);
}

/** A page for `path` recording its IIIF tile answers. */
async function open(context, path) {
  const page = await context.newPage();
  const tiles = [];
  page.on("response", (r) => {
    if (/\/default\.jpg$/.test(r.url())) tiles.push({ url: r.url(), status: r.status() });
  });
  page.on("pageerror", (e) => check(false, `${path}: page error ${e.message}`));
  const response = await page.goto(`${base}${path}`);
  return { page, tiles, status: response.status() };
}

/** Whether a IIIF tile URL asks for full resolution (region width = size width). */
function fullResolution(url) {
  const m = url.match(/\/(\d+),(\d+),(\d+),(\d+)\/(\d+),/);
  return m !== null && m[3] === m[5];
}

/** Resizes the window and waits until the viewer has taken its new size. */
async function resize(page, width, height) {
  await page.setViewportSize({ width, height });
  await page.waitForFunction((w) => viewer.viewport.getContainerSize().x === w, width, { timeout: 5000 });
}

/** The degraded view (`enc`, the encoded id) compared with the degraded service's rendering:
 * in a window small enough for the degraded image to fill the viewer at one degraded pixel
 * per screen pixel (the service refuses larger sizes), the access panel hidden; then the
 * window and panel as they were. */
async function checkDegraded(page, enc) {
  await resize(page, 360, 300);
  await zoomToPixels(page);
  await page.evaluate(() => { document.getElementById("auth").style.visibility = "hidden"; });
  await checkScreenshot(page, check, "login: degraded view", "iiif", `${base}/iiif/_degraded/${enc}`,
    `${out}/auth-degraded.png`);
  await page.evaluate(() => { document.getElementById("auth").style.visibility = ""; });
  await resize(page, 1024, 768);
}

/** Logs in through the access service's page, which the viewer's button opens. */
async function logIn(page) {
  const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#auth-button")]);
  await popup.waitForLoadState();
  await popup.fill("input[name=user]", "reader");
  await popup.fill("input[name=password]", "reading-room");
  await Promise.all([popup.waitForEvent("close"), popup.click("button[type=submit]")]);
  await page.waitForFunction(() => window.authState === "full", null, { timeout: 15000 });
}

async function loginFlow(browser) {
  const context = await newContext(browser);
  const id = `manuscripts/${name}`;
  const enc = encodeURIComponent(id);
  const { page, tiles } = await open(context, manifestViewer(manifestUrl("p3", id)));
  await settle(page);
  check(await page.evaluate(() => window.authState) === "limited", "login: the probe says limited");
  check(tiles.length > 0 && tiles.every((t) => t.url.includes("/_degraded/") && t.status === 200),
    `login: the first view is the degraded service's (${tiles.length} tiles, all 200)`);
  const heading = await page.textContent("#auth-heading");
  check(heading === "Full resolution for readers", `login: the access service's heading shown (${heading})`);
  await zoomToPixels(page);
  const limited = tiles.filter((t) => t.status !== 200);
  check(limited.length === 0, `login: zoomed in, the degraded service refused nothing (${tiles.length} tiles)`);
  await page.locator("#viewer").screenshot({ path: `${out}/auth-limited.png` });
  await checkDegraded(page, enc);

  await logIn(page);
  check(await page.isHidden("#auth"), "login: after login the access panel is gone");
  const before = tiles.length;
  await settle(page);
  await zoomToPixels(page);
  const full = tiles.slice(before);
  check(full.length > 0 && full.every((t) => !t.url.includes("/_degraded/") && t.status === 200),
    `login: the full image service's tiles, all 200 (${full.length})`);
  check(full.some((t) => fullResolution(t.url)), "login: full-resolution tiles drawn");
  const events = await page.evaluate(() => window.tileEvents);
  check(events.failed === 0, `login: the viewer drew ${events.loaded} tiles, none failed`);
  await checkScreenshot(page, check, "login: full view", "iiif", `${base}/iiif/${enc}`, `${out}/auth-full.png`);
  await context.close();
}

/** A restricted image: its viewer page refused and the probe denying without `headers`;
 * from a manifest (Presentation `version`) with them, shown in full. */
async function granted(browser, label, folder, headers, version) {
  const id = `${folder}/${name}`;
  const enc = encodeURIComponent(id);
  const manifest = manifestViewer(manifestUrl(version, id));
  const anonymous = await newContext(browser);
  const refused = await open(anonymous, `/viewer/${enc}`);
  check(refused.status === 401, `${label}: the viewer page is refused without access (${refused.status})`);
  const denied = await open(anonymous, manifest);
  await denied.page.waitForFunction(() => window.authState !== "open", null, { timeout: 15000 });
  check(await denied.page.evaluate(() => window.authState) === "denied",
    `${label}: from the manifest without access, the probe denies`);
  await anonymous.close();
  const context = await newContext(browser, headers);
  const direct = await open(context, `/viewer/${enc}`);
  check(direct.status === 200, `${label}: the viewer page opens with access`);
  await direct.page.close();
  const { page, tiles } = await open(context, manifest);
  await settle(page);
  await zoomToPixels(page);
  check(await page.evaluate(() => window.authState) === "full", `${label}: from the manifest, the probe says 200`);
  const title = await page.textContent("#title");
  check(title === "A protected image", `${label}: the manifest's label is the title (${title})`);
  check(tiles.length > 0 && tiles.every((t) => t.status === 200) && tiles.some((t) => fullResolution(t.url)),
    `${label}: full-resolution tiles, all 200 (${tiles.length})`);
  await checkScreenshot(page, check, label, "iiif", `${base}/iiif/${enc}`, `${out}/auth-${label}.png`);
  await context.close();
}

/** Manifests that do not open: the page says why, the manifest's address as text. */
async function manifestErrors(browser) {
  const context = await newContext(browser);
  const cases = [
    [`${MANIFESTS}/<b>missing</b>.json`, /^Could not load the manifest .*<b>missing<\/b>\.json: HTTP 404$/],
    [`${MANIFESTS}/none.json`, /^The manifest .* has no IIIF image service on its first canvas\.$/],
  ];
  for (const [url, expected] of cases) {
    const { page } = await open(context, manifestViewer(url));
    const message = await page.textContent("#message", { timeout: 15000 });
    const markup = await page.locator("#message b").count();
    check(expected.test(message) && markup === 0, `manifest error shown as text: ${message}`);
  }
  await context.close();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
});
try {
  await loginFlow(browser);
  await granted(browser, "external", "staff", { "X-Remote-User": "ana" }, "p3");
  await granted(browser, "kiosk", "patients", { "X-Forwarded-For": "192.0.2.10" }, "p2");
  await manifestErrors(browser);
} finally {
  await browser.close();
}
console.log(`auth viewer: ${failures.length ? "FAILED " + failures.length : "all checks passed"}`);
process.exit(failures.length ? 1 : 0);
