// trust.test.js - the Peers and trust page follows the DNS: run by test_admin_dane.sh between
// its steps. Environment: DJ_URL, DJ_RESOLVE (host:port), DJ_READ_KEY, DJ_OUT, DJ_PEER,
// DJ_WANT (green|red: the colour the peer's card must reach), DJ_WAIT_MS. With DJ_OWN_EUI (run
// by test_admin_ownership.sh): the Ownership page instead, where the chain of that device must
// show its links in the colours DJ_WANT lists ("green,red": link 1 green, link 2 red).
"use strict";
const { env, launch, login, shot, run } = require("./lib");

run(async () => {
  const { browser, page } = await launch();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await login(page, env.DJ_READ_KEY, env.DJ_OWN_EUI ? "#ownership" : "#peers");
  if (env.DJ_OWN_EUI) return ownership(browser, page, errors);
  const sel = `#peers .card[data-peer="${env.DJ_PEER}"].${env.DJ_WANT}`;
  let ok = true;
  const t0 = Date.now();
  try {
    await page.waitForSelector(sel, { timeout: Number(env.DJ_WAIT_MS || 15000) });
  } catch (e) {
    ok = false;
  }
  await shot(page, `trust-${env.DJ_PEER}-${env.DJ_WANT}`);
  const text = await page.$eval(`#peers .card[data-peer="${env.DJ_PEER}"]`, (e) => e.className + ": " + e.textContent).catch(() => "no card");
  console.log((ok ? "ok - " : "not ok - ") + `${env.DJ_PEER} card ${env.DJ_WANT} after ${Date.now() - t0} ms (${text})`);
  if (errors.length) console.log("not ok - page errors: " + errors.join("; "));
  await browser.close();
  process.exit(ok && !errors.length ? 0 : 1);
});

// ownership - the Ownership page: one card per link, each in its colour, its verdict escaped text
async function ownership(browser, page, errors) {
  const want = env.DJ_WANT.split(",");
  await page.waitForSelector("#own-eui", { visible: true });
  await page.type("#own-eui", env.DJ_OWN_EUI);
  await page.click("#own-show");
  let ok = true;
  try {
    await page.waitForFunction((n) => document.querySelectorAll("#chain .card.link").length === n,
                               { timeout: Number(env.DJ_WAIT_MS || 15000) }, want.length);
  } catch (e) {
    ok = false;
  }
  const links = await page.$$eval("#chain .card.link", (cs) => cs.map((c) => ({
    cls: c.className, verdict: c.querySelector(".link-verdict").textContent })));
  want.forEach((w, i) => {
    const l = links[i] || { cls: "none", verdict: "" };
    const good = l.cls.split(" ").includes(w) && (w !== "green" || l.verdict === "verified");
    console.log((good ? "ok - " : "not ok - ") + `link ${i + 1} ${w} (${l.cls}: ${l.verdict})`);
    ok = ok && good;
  });
  await shot(page, `ownership-${env.DJ_OWN_EUI}-${want.join("-")}`);
  if (errors.length) console.log("not ok - page errors: " + errors.join("; "));
  await browser.close();
  process.exit(ok && !errors.length ? 0 : 1);
}
