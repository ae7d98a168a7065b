// transfer.test.js - the Ownership page's auth codes and transfer form: run by
// test_admin_transfer.sh against a danejoind with [registry] and knotd. Environment: DJ_URL,
// DJ_RESOLVE (host:port), DJ_READ_KEY, DJ_OPS_KEY, DJ_DEV (an enrolled DevEUI owned by
// opa.test), DJ_TO (the new owner zone), DJ_OUT (screenshots).
//
// Checks: a read key sees no Set auth code, Revoke or Transfer button; an operate key sets an
// auth code (each change confirmed), sees it once, transfers the device with the form and
// then sees its new chain (the new owner, a link to it signed by the registry); the code is
// gone from the page afterwards; no page error, no CSP violation.
"use strict";
const { env, check, launch, login: loginAs, shot, finish, run } = require("./lib");

// login - log in on the Ownership page, wait for it to be shown
async function login(page, key) {
  await loginAs(page, key, "#ownership");
  await page.waitForSelector("#page-ownership:not([hidden])", { timeout: 10000 });
}

async function visible(page, sel) {
  return page.$eval(sel, (e) => e.offsetParent !== null && getComputedStyle(e).display !== "none");
}

async function chainText(page) {
  return page.$eval("#chain", (e) => e.textContent);
}

run(async () => {
  const { browser, page } = await launch();
  const errors = [];
  const dialogs = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) errors.push(m.text()); });
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.accept(); });

  // read scope: no change button on the Ownership page
  await login(page, env.DJ_READ_KEY);
  for (const sel of ["#ac-set", "#ac-revoke", "#xf-submit"])
    check(!(await visible(page, sel)), `read key: ${sel} is not shown`);
  await page.click("#logout");
  await page.waitForSelector("#login:not([hidden])");

  // operate scope: set a code, see it once
  await login(page, env.DJ_OPS_KEY);
  check(await visible(page, "#ac-set"), "operate key: Set auth code is shown");
  await page.type("#own-eui", env.DJ_DEV);
  await page.click("#own-show");
  await page.waitForFunction(() => document.querySelector("#chain").textContent.includes("Owner"),
                             { timeout: 10000 });
  const before = await chainText(page);
  check(before.includes("opa.test.") && !before.includes(env.DJ_TO + "."),
        "before: the chain names opa.test. and not " + env.DJ_TO);
  await page.click("#ac-set");
  await page.waitForSelector("#ac-out:not([hidden])", { timeout: 10000 });
  const code = await page.$eval("#ac-code", (e) => e.value);
  check(/^[0-9A-HJKMNP-TV-Z]{24}$/.test(code), "the new auth code is shown (24 characters)");
  check(dialogs.some((m) => m.includes("Set a new auth code for " + env.DJ_DEV)), "setting it was confirmed");
  const said = await page.$eval("#ac-result", (e) => e.textContent);
  check(said.includes("shown only now"), "the page says the code is shown once");
  check(await page.evaluate(() => document.activeElement.id === "ac-code"), "the code field has the focus (keyboard)");

  // the transfer form, filled from the keyboard
  await page.focus("#xf-eui");
  await page.keyboard.type(env.DJ_DEV);
  await page.keyboard.press("Tab");
  await page.keyboard.type(code);
  await page.keyboard.press("Tab");
  await page.keyboard.type(env.DJ_TO);
  await page.keyboard.press("Tab");
  await page.keyboard.type("00001a");
  await page.keyboard.press("Tab");
  await page.keyboard.type("as." + env.DJ_TO);
  await page.keyboard.press("Enter");
  let done = true;
  try {
    await page.waitForFunction(() => /^Transferred /.test(document.querySelector("#xf-result").textContent),
                               { timeout: 30000 });
  } catch (e) { done = false; }
  const result = await page.$eval("#xf-result", (e) => e.textContent);
  check(done, "the transfer is done: " + result);
  check(dialogs.some((m) => m.includes("Transfer " + env.DJ_DEV + " to " + env.DJ_TO)), "the transfer was confirmed");

  // the new chain: owner DJ_TO, a link from opa.test. to it signed by the registry
  let shown = true;
  try {
    await page.waitForFunction((to) => {
      const t = document.querySelector("#chain").textContent;
      return t.includes("Owner " + to + ".");
    }, { timeout: 10000 }, env.DJ_TO);
  } catch (e) { shown = false; }
  const after = await chainText(page);
  check(shown, "after: the chain names the new owner " + env.DJ_TO + ".");
  check(after.includes("opa.test.") && after.includes("maker.test.") && after.includes("00001a"),
        "after: the new link (from opa.test., signed by maker.test., NetID 00001a) is drawn");
  check(!(await visible(page, "#ac-out")), "after: the code field is hidden again");
  const html = await page.content();
  check(!html.includes(code), "the used code is no longer in the page");
  await page.evaluate(() => document.querySelector("#xfer-form").scrollIntoView());
  await shot(page, "ownership-transfer-1280");
  await page.setViewport({ width: 390, height: 844 });
  await shot(page, "ownership-transfer-390");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  check(!overflow, "390x844: no horizontal overflow");

  check(errors.length === 0, "no page error or CSP violation" + (errors.length ? ": " + errors.join("; ") : ""));
  await finish(browser);
});
