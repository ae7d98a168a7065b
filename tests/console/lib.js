// lib.js - what the console browser tests share (required by console.test.js, transfer.test.js,
// trust.test.js): the "ok - " / "not ok - " check lines, Debian's chromium launched headless with
// DJ_RESOLVE's name mapped to 127.0.0.1, the login form, the screenshots into DJ_OUT, the end.
// puppeteer-core is found through NODE_PATH, as the tests themselves find it.
"use strict";
const puppeteer = require("puppeteer-core");
const env = process.env;

let failed = 0;

// check - print one check line; a failed one makes finish() exit 1
function check(ok, what) {
  console.log((ok ? "ok - " : "not ok - ") + what);
  if (!ok) failed++;
}

// launch - chromium (DJ_CHROMIUM or /usr/bin/chromium), headless, no sandbox, the test CA not
// needed (certificate errors ignored), DJ_RESOLVE (host:port) mapped to 127.0.0.1:port; one
// page at 1280x800. Returns { browser, page }.
async function launch() {
  const [host, port] = env.DJ_RESOLVE.split(":");
  const browser = await puppeteer.launch({
    executablePath: env.DJ_CHROMIUM || "/usr/bin/chromium", headless: "new",
    args: ["--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
           `--host-resolver-rules=MAP ${host}:${port} 127.0.0.1:${port}`],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  return { browser, page };
}

// login - load DJ_URL + "/" + hash ("#ownership", ...), type KEY into the login form, submit it
async function login(page, key, hash = "") {
  await page.goto(env.DJ_URL + "/" + hash, { waitUntil: "networkidle0" });
  await page.waitForSelector("#apikey", { visible: true });
  await page.type("#apikey", key);
  await page.click("#login-btn");
}

// shot - a full-page screenshot into DJ_OUT/NAME.png
async function shot(page, name) {
  await page.screenshot({ path: `${env.DJ_OUT}/${name}.png`, fullPage: true });
}

// finish - close the browser, exit 1 when a check failed
async function finish(browser) {
  await browser.close();
  process.exit(failed ? 1 : 0);
}

// run - run the test's async main; an exception is one failed check, exit 1
function run(main) {
  main().catch((e) => { console.log("not ok - " + e.stack); process.exit(1); });
}

module.exports = { env, check, launch, login, shot, finish, run };
