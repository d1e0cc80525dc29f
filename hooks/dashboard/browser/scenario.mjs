// The dashboard in a real browser: playwright-core drives Debian's chromium
// (CHROMIUM; nothing is downloaded) through the scenario against a
// running claimsmith serve (BASE_URL) seeded with samples/data. The Go test
// (browser_test.go) starts the server, creates the keys and runs this file.
// One JSON line per step on stdout; exit status 1 on the first failure.
//
// Environment: BASE_URL, CHROMIUM, KEY_ALL (every scope), KEY_READ
// (read:authz only), CONTROL_URL (POST /advance?by=DURATION moves the
// server's clock), SCREENSHOTS (a directory), IMPORT_FILE (the extension
// export to import).
import { chromium } from "playwright-core";
import { readFile } from "node:fs/promises";
import path from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) { throw new Error(`${k} is not set`); }
  return v;
};
const base = env("BASE_URL");
const shots = env("SCREENSHOTS");
const user = "auth0|browser-qa";
const group = "QA Leads";

function check(cond, msg) {
  if (!cond) { throw new Error(msg); }
}

let current = "";
let lastPage = null; // for the failure screenshot
const t0 = Date.now();
async function step(name, fn) {
  current = name;
  const s = Date.now();
  await fn();
  console.log(JSON.stringify({ step: name, ms: Date.now() - s }));
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });
}

// signIn signs a fresh page in with key and lands on the first page.
async function signIn(page, key) {
  await page.goto(base + "/admin/");
  check(page.url().includes("/admin/signin"), `not sent to sign-in: ${page.url()}`);
  await page.getByLabel("Admin key").fill(key);
  await Promise.all([page.waitForURL(/\/admin\/groups/), page.getByRole("button", { name: "Sign in" }).click()]);
}

// submit clicks a form's button and waits for the page it leads to.
async function submit(page, button) {
  await Promise.all([page.waitForNavigation(), button.click()]);
}

async function flash(page) {
  return (await page.locator("p.flash").textContent({ timeout: 15000 })) || "";
}

const browser = await chromium.launch({ executablePath: env("CHROMIUM"), headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await ctx.newPage();
  lastPage = page;
  page.setDefaultTimeout(30000);

  await step("sign in", async () => {
    await page.goto(base + "/admin/groups");
    check(page.url().includes("/admin/signin"), "a page without a session is not the sign-in");
    await shot(page, "signin");
    await page.getByLabel("Admin key").fill("csk_wrong_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    check(await page.locator("#signin-error").isVisible(), "a wrong key shows no error");
    await page.getByLabel("Admin key").fill(env("KEY_ALL"));
    await Promise.all([page.waitForURL(/\/admin\/groups/), page.getByRole("button", { name: "Sign in" }).click()]);
  });

  let groupURL = "";
  await step("create a group", async () => {
    await page.locator("#new-name").fill(group);
    await page.locator("#new-desc").fill("Created by the browser test");
    await Promise.all([page.waitForURL(/\/admin\/groups\/[^/?]+$/), page.getByRole("button", { name: "Create group" }).click()]);
    groupURL = page.url();
    check((await flash(page)).includes("created"), "no created notice");
    check((await page.locator("h1").textContent()).includes(group), "not on the new group's page");
  });

  await step("search groups while typing", async () => {
    await page.goto(base + "/admin/groups");
    await page.locator("#q").pressSequentially("qa le", { delay: 20 });
    await page.waitForFunction(() => document.querySelector("#group-count").textContent.startsWith("1 "));
    check(await page.locator("#group-rows").getByRole("link", { name: group }).isVisible(), "search does not find the group");
    await shot(page, "groups");
  });

  await step("nest it", async () => {
    await page.goto(base + "/admin/groups/grp-company");
    // By id: the paste splits on spaces, so a name with one would not do.
    await page.locator("#add-nested").fill(decodeURIComponent(groupURL.split("/").pop()));
    await submit(page, page.getByRole("button", { name: "Nest", exact: true }));
    check((await flash(page)).length > 0, "no notice after nesting");
    check(await page.locator("ul.tree").getByRole("link", { name: group }).isVisible(), "the group is not in Company's tree");
  });

  await step("add a member", async () => {
    await page.goto(groupURL);
    await page.locator("#add-members").fill(user);
    await submit(page, page.getByRole("button", { name: "Add members" }));
    await page.locator("#member-rows").getByText(user).waitFor();
  });

  await step("assign a role", async () => {
    await page.locator("#add-role").selectOption("role-portal-editor");
    await submit(page, page.getByRole("button", { name: "Add role" }));
    await page.getByRole("link", { name: "editor", exact: true }).waitFor();
    await shot(page, "group");
  });

  await step("user view shows the new role and why", async () => {
    await page.goto(base + "/admin/users");
    await page.locator("#u-user").fill(user);
    await page.locator("#u-client").selectOption("portal-client");
    await Promise.all([page.waitForURL(/user=/), page.getByRole("button", { name: "Explain" }).click()]);
    const roles = await page.locator("#effective-roles").textContent();
    check(roles.includes(`member of ${group} → role editor`), `no why-chain for editor: ${roles}`);
    check(roles.includes(`member of ${group} → nested in Company → role user`), `no nested chain for user: ${roles}`);
    const perms = await page.locator("#effective-permissions").textContent();
    check(perms.includes("role editor → permission write:documents"), `no permission chain: ${perms}`);
    await shot(page, "users");
  });

  await step("try a login shows the new claim", async () => {
    await page.goto(base + "/admin/try-login?sample=employee.json");
    const ev = JSON.parse(await page.locator("#event").inputValue());
    ev.user.user_id = user;
    ev.user.email = "qa@example.com";
    await page.locator("#event").fill(JSON.stringify(ev, null, 2));
    await submit(page, page.getByRole("button", { name: "Run (dry run)" }));
    await page.locator("#decision").waitFor();
    check((await page.locator("#decision").textContent()).includes("allowed"), "the login is not allowed");
    const claims = await page.locator("#id-claims").textContent();
    check(claims.includes("https://example.com/roles") && claims.includes("editor"), `no editor claim: ${claims}`);
    const trace = await page.locator("#trace").textContent();
    check(trace.includes("authorization") && /µs|ms/.test(trace), `no trace with timings: ${trace}`);
    await shot(page, "trylogin");
  });

  await step("CSRF token missing is refused", async () => {
    await page.goto(base + "/admin/groups");
    await page.evaluate(() => document.querySelector('form[action="/admin/groups"] input[name=csrf]').remove());
    await page.locator("#new-name").fill("Forged");
    const [res] = await Promise.all([page.waitForResponse((r) => r.request().method() === "POST"),
      page.getByRole("button", { name: "Create group" }).click()]);
    check(res.status() === 403, `a POST without the CSRF token answered ${res.status()}`);
    await page.goto(base + "/admin/groups?q=Forged");
    check((await page.locator("#group-count").textContent()).startsWith("0 "), "the forged create happened");
  });

  await step("import the sample export with its preview", async () => {
    await page.goto(base + "/admin/import");
    await page.locator("#file").setInputFiles(env("IMPORT_FILE"));
    await page.getByRole("button", { name: "Preview import" }).click();
    await page.locator("#preview").waitFor();
    const removes = await page.locator("#removes").textContent();
    check(removes.includes("1 group"), `the preview does not name the removed group: ${removes}`);
    check((await page.locator("#preview").textContent()).includes(group), "the preview does not list the group");
    await shot(page, "import-preview");
    await page.getByRole("button", { name: "Apply import" }).click();
    await page.locator("#apply-error").waitFor();
    check((await page.locator("#apply-error").textContent()).includes("tick the confirmation"), "an unconfirmed removal was not refused");
    await page.locator("#replace").check();
    await page.getByRole("button", { name: "Apply import" }).click();
    await page.locator("p.flash").waitFor();
    check((await flash(page)).includes("Imported: 9 groups"), "no import notice");
  });

  await step("export", async () => {
    await page.goto(base + "/admin/import");
    const [dl] = await Promise.all([page.waitForEvent("download"), page.locator("#export").click()]);
    const doc = JSON.parse(await readFile(await dl.path(), "utf8"));
    check(doc.groups.length === 9 && !doc.groups.some((g) => g.name === group), `export: ${doc.groups.length} groups`);
  });

  await step("the other pages render", async () => {
    for (const [name, url] of [["roles", "/admin/roles"], ["applications", "/admin/applications"], ["audit", "/admin/audit"],
      ["keys", "/admin/keys"], ["rules", "/admin/rules"]]) {
      const res = await page.goto(base + url);
      check(res.status() === 200, `${url} answered ${res.status()}`);
      await shot(page, name);
    }
    check((await page.locator("main").textContent()).includes("authorization"), "the rules page does not list the pipeline");
  });

  await step("a read-only key cannot write", async () => {
    const rctx = await browser.newContext({ viewport: { width: 390, height: 844 } }); // a phone
    const rp = await rctx.newPage();
    rp.setDefaultTimeout(30000);
    await signIn(rp, env("KEY_READ"));
    check(await rp.locator(".badge", { hasText: "read-only" }).isVisible(), "no read-only badge");
    check((await rp.locator("#new-name").count()) === 0, "a read-only key sees the create form");
    await rp.goto(base + "/admin/groups/grp-company");
    check((await rp.locator("#add-members").count()) === 0, "a read-only key sees the member form");
    // The server refuses anyway: a hand-made POST with a valid CSRF token.
    const status = await rp.evaluate(async () => {
      const csrf = document.querySelector("input[name=csrf]").value;
      const res = await fetch("/admin/groups", { method: "POST", body: new URLSearchParams({ csrf, name: "Sneaky" }) });
      return res.status;
    });
    check(status === 403, `a read-only write answered ${status}`);
    await rp.goto(base + "/admin/users?user=auth0%7Calice&client=portal-client");
    await shot(rp, "users-phone");
    await rctx.close();
  });

  await step("session expiry returns to sign-in", async () => {
    const res = await fetch(env("CONTROL_URL") + "/advance?by=13h", { method: "POST" });
    check(res.ok, "the clock did not move");
    await page.goto(base + "/admin/groups");
    check(page.url().includes("/admin/signin"), `an expired session still serves: ${page.url()}`);
  });

  console.log(JSON.stringify({ ok: true, ms: Date.now() - t0 }));
} catch (err) {
  let where = "";
  if (lastPage) {
    where = lastPage.url();
    const msgs = await lastPage.locator(".error, .field-error, .warn").allTextContents().catch(() => []);
    if (msgs.length) { where += " — page says: " + msgs.join(" | "); }
    await lastPage.screenshot({ path: path.join(shots, "failure.png"), fullPage: true }).catch(() => {});
  }
  console.log(JSON.stringify({ ok: false, step: current, error: String(err && err.stack || err) + "\nat " + where }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
