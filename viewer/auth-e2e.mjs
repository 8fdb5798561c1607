// End-to-end test of the IIIF Authorization Flow 2.0 in the viewer, in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core), against a server running the
// example policy (examples/auth-policy.toml) with TRUSTED_PROXIES covering the browser:
//   - manuscripts/<id> (degraded, active login): the viewer first shows the probe's
//     substitute (the degraded image service) and the access service's heading; its button
//     opens the login page, which is filled in and closes itself; the token service gives
//     an access token, the probe says 200 and the full image is shown: zoomed to one image
//     pixel per screen pixel it draws full-resolution tiles, all answered 200;
//   - staff/<id> (external): refused (401) without the proxy's identity header, shown in
//     full with X-Remote-User;
//   - patients/<id> (kiosk): refused from outside the kiosk addresses, shown in full with
//     an X-Forwarded-For inside them.
// Screenshots go to OUT_DIR. Usage: node viewer/auth-e2e.mjs BASE_URL IMAGE_NAME OUT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

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

async function loginFlow(browser) {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  const id = encodeURIComponent(`manuscripts/${name}`);
  const { page, tiles } = await open(context, `/viewer/${id}`);
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

  const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#auth-button")]);
  await popup.waitForLoadState();
  await popup.fill("input[name=user]", "reader");
  await popup.fill("input[name=password]", "reading-room");
  await Promise.all([popup.waitForEvent("close"), popup.click("button[type=submit]")]);
  await page.waitForFunction(() => window.authState === "full", null, { timeout: 15000 });
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
  await page.locator("#viewer").screenshot({ path: `${out}/auth-full.png` });
  await context.close();
}

/** A restricted image: refused without `headers`, shown in full with them. */
async function granted(browser, label, folder, headers) {
  const path = `/viewer/${encodeURIComponent(`${folder}/${name}`)}`;
  const anonymous = await browser.newContext();
  const refused = await open(anonymous, path);
  check(refused.status === 401, `${label}: the viewer page is refused without access (${refused.status})`);
  await anonymous.close();
  const context = await browser.newContext({
    viewport: { width: 1024, height: 768 },
    extraHTTPHeaders: headers,
  });
  const { page, tiles, status } = await open(context, path);
  check(status === 200, `${label}: the viewer page opens with access`);
  await settle(page);
  await zoomToPixels(page);
  check(await page.evaluate(() => window.authState) === "full", `${label}: the probe says 200`);
  check(tiles.length > 0 && tiles.every((t) => t.status === 200) && tiles.some((t) => fullResolution(t.url)),
    `${label}: full-resolution tiles, all 200 (${tiles.length})`);
  await page.locator("#viewer").screenshot({ path: `${out}/auth-${label}.png` });
  await context.close();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
});
try {
  await loginFlow(browser);
  await granted(browser, "external", "staff", { "X-Remote-User": "ana" });
  await granted(browser, "kiosk", "patients", { "X-Forwarded-For": "192.0.2.10" });
} finally {
  await browser.close();
}
console.log(`auth viewer: ${failures.length ? "FAILED " + failures.length : "all checks passed"}`);
process.exit(failures.length ? 1 : 0);
