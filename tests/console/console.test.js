// console.test.js - the danejoin console in Debian's chromium, driven by puppeteer-core.
// Run by tests/integration/test_console.sh, which starts danejoind and passes (environment):
//   DJ_URL (https://js.test:PORT), DJ_RESOLVE (js.test:PORT:127.0.0.1 for chromium),
//   DJ_READ_KEY, DJ_OPS_KEY, DJ_OUT (screenshots), DJ_JOIN_CMD (a shell command making joins),
//   DJ_BAD_CSV, DJ_GOOD_CSV (files)
// Prints "ok - ..." / "not ok - ..." lines; exits 1 when any check failed.
"use strict";
const { execSync } = require("child_process");
const { env, check, launch, login: loginAs, shot, finish, run } = require("./lib");

run(async () => {
  const { browser, page } = await launch();
  const errors = [];
  let xss = false;
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("console", (m) => { if (/Content Security Policy|Refused to/.test(m.text())) errors.push("csp: " + m.text()); });
  page.on("dialog", (d) => d.accept());
  await page.exposeFunction("__djXss", () => { xss = true; });

  async function shots(name) {
    for (const [w, h] of [[1280, 800], [390, 844]]) {
      await page.setViewport({ width: w, height: h });
      await new Promise((r) => setTimeout(r, 300));
      await shot(page, `${name}-${w}`);
    }
    await page.setViewport({ width: 1280, height: 800 });
  }
  const login = (key) => loginAs(page, key);
  async function visible(sel) {
    return page.$eval(sel, (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length)).catch(() => false);
  }

  // -- a wrong key is refused
  await login("djk_" + "0".repeat(48));
  await page.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
  const le = await page.$eval("#login-error", (e) => e.textContent);
  check(/unknown or revoked/.test(le), "a wrong key is refused: " + le);
  await shots("login");

  // -- a read key: the devices, no change buttons
  await login(env.DJ_READ_KEY);
  await page.waitForSelector("#devices tbody tr");
  const nrows = await page.$$eval("#devices tbody tr", (r) => r.length);
  check(nrows === 3, "read key: 3 devices listed (" + nrows + ")");
  check(!(await visible("#devices tbody button")), "read key: no reset or delete buttons");
  check(!(await visible("#import-card")), "read key: no import");
  const who = await page.$eval("#who", (e) => e.textContent);
  check(who === "apikey:viewer (read)", "read key: who " + who);

  // -- peers and trust; the XSS probe lives in a peer's identity
  await page.goto(env.DJ_URL + "/#peers", { waitUntil: "networkidle0" });
  await page.waitForSelector("#peers .card");
  const ids = await page.$$eval("#peers .card", (c) => c.map((x) => x.textContent).join("|"));
  check(ids.includes("<img src=x onerror=__djXss()>"), "the probe identity is shown as text");
  check((await page.$$("#peers img")).length === 0, "no <img> element was made from data");
  check(await page.$("#card-self") !== null, "our own certificate card");
  await shots("peers");

  // -- joins appear on the Joins page within 2 s
  await page.goto(env.DJ_URL + "/#joins", { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#chart");
  await new Promise((r) => setTimeout(r, 500));
  execSync(env.DJ_JOIN_CMD, { stdio: "ignore" });
  const t0 = Date.now();
  let seen = false;
  try {
    await page.waitForFunction(() => document.querySelectorAll("#joins tbody tr").length >= 3, { timeout: 2000 });
    seen = true;
  } catch (e) { seen = false; }
  check(seen, "3 joins on the Joins page within 2 s (" + (Date.now() - t0) + " ms)");
  await page.waitForFunction(() => Number(document.getElementById("joins-total").textContent) >= 3, { timeout: 3000 }).catch(() => {});
  const legend0 = await page.$eval("#chart-legend", (e) => e.textContent);
  check(/^accepted \(3\)no refusals/.test(legend0), "chart legend before a refusal: " + legend0);

  // -- refused joins: the chart draws them by reason (TS002 Result), with a legend entry
  execSync(env.DJ_BAD_JOIN_CMD, { stdio: "ignore" });
  let reasonShown = true;
  await page.waitForSelector('#chart-legend [data-reason="MICFailed"]', { timeout: 3000 }).catch(() => { reasonShown = false; });
  const legend1 = await page.$eval("#chart-legend", (e) => e.textContent);
  check(reasonShown && /MICFailed \(1\)/.test(legend1), "chart legend names the refusal reason: " + legend1);
  // the canvas holds bars in the colour of MICFailed's legend swatch
  const px = await page.evaluate(() => {
    const sw = document.querySelector('#chart-legend [data-reason="MICFailed"] .sw');
    const want = sw ? getComputedStyle(sw).backgroundColor.match(/\d+/g).map(Number) : [-1, -1, -1];
    const c = document.getElementById("chart");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4)
      if (d[i] === want[0] && d[i + 1] === want[1] && d[i + 2] === want[2] && d[i + 3] === 255) n++;
    return n;
  });
  check(px > 0, "the chart draws the MICFailed series in its legend colour (" + px + " pixels)");
  const rows = await page.$$eval("#joins tbody tr", (r) => r.map((x) => x.textContent));
  check(rows.filter((t) => t.includes("MICFailed")).length === 1, "the refused join is listed as MICFailed");
  await shots("joins");

  // -- audit
  await page.goto(env.DJ_URL + "/#audit", { waitUntil: "networkidle0" });
  await page.waitForSelector("#audit tbody tr");
  check((await page.$$("#audit tbody tr")).length > 0, "audit entries listed");
  await shots("audit");

  // -- ownership page (no owner rows in this store: the refusal is shown)
  await page.goto(env.DJ_URL + "/#ownership", { waitUntil: "networkidle0" });
  await page.type("#own-eui", "0000000000000103");
  await page.click("#own-show");
  await page.waitForSelector("#chain p");
  check(/no owner/.test(await page.$eval("#chain", (e) => e.textContent)), "ownership: a device without owner says so");
  await shots("ownership");

  // -- an operate key: import with a bad line, then fixed; reset and delete confirmed
  await page.goto(env.DJ_URL + "/", { waitUntil: "networkidle0" });
  await page.click("#logout");
  await login(env.DJ_OPS_KEY);
  await page.waitForSelector("#devices tbody tr");
  check(await visible("#devices tbody button"), "operate key: change buttons shown");
  const input = await page.$("#csv-file");
  await input.uploadFile(env.DJ_BAD_CSV);
  await page.click("#csv-import");
  await page.waitForFunction(() => document.getElementById("import-result").textContent.length > 0);
  const bad = await page.$eval("#import-result", (e) => e.textContent);
  check(/^Line 3: upload.csv:3: field app_key/.test(bad), "a bad line is named: " + bad);
  await page.waitForFunction(() => /3 devices/.test(document.getElementById("dev-total").textContent));
  check(true, "... and nothing was imported (3 devices)");
  await input.uploadFile(env.DJ_GOOD_CSV);
  await page.click("#csv-import");
  await page.waitForFunction(() => /imported/.test(document.getElementById("import-result").textContent));
  await page.waitForFunction(() => /6 devices/.test(document.getElementById("dev-total").textContent));
  check(true, "the fixed file is imported (6 devices)");
  await page.click("#devices tbody tr:last-child button.danger");
  await page.waitForFunction(() => /5 devices/.test(document.getElementById("dev-total").textContent));
  check(true, "delete, confirmed: 5 devices");
  await shots("devices");

  check(!xss, "the XSS probe never ran");
  check(errors.length === 0, "no page error or CSP violation" + (errors.length ? ": " + errors.join("; ") : ""));
  await finish(browser);
});
