// t/083-web-client.t: the browser client of web/ in Debian's chromium,
// driven by puppeteer-core (installed by tools/bootstrap under
// .deps/browser; no browser of its own).  Two pages, two users: each
// signs in with the code the log SMS provider wrote to the error log;
// alice starts a chat with bob's number and types, bob sees her typing,
// her message arrives live on his page, she sees his read receipt.
// Input: one JSON argument {url, errorLog, phones: {alice, bob},
// shots}; output: one line of JSON, what the pages showed.

'use strict';

const fs = require('fs');
const path = require('path');
const puppeteer = require(path.join(process.env.CHAT_BROWSER,
                                    'node_modules', 'puppeteer-core'));

const cfg = JSON.parse(process.argv[2]);
const out = {};
const errors = [];        // the pages' uncaught errors and #error
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// the code of the newest "chat sms: to <phone>: <code>" line
async function codeFor(phone) {
  const re = new RegExp('chat sms: to \\' + phone + ': \\D*(\\d{6})', 'g');
  for (let i = 0; i < 100; i++) {
    const log = fs.readFileSync(cfg.errorLog, 'utf8');
    let m, code = null;
    while ((m = re.exec(log)) !== null) code = m[1];
    if (code) return code;
    await sleep(50);
  }
  throw new Error('no code for ' + phone + ' in the error log');
}

async function signIn(page, phone) {
  await page.goto(cfg.url, { waitUntil: 'load' });
  await page.type('#phone', phone);
  await page.click('#send-code');
  await page.waitForSelector('#code', { visible: true });
  await page.type('#code', await codeFor(phone));
  await page.click('#verify');
  await page.waitForSelector('#app', { visible: true });
}

async function main() {
  const args = ['--headless=new', '--disable-gpu',
                '--disable-dev-shm-usage'];
  if (process.getuid() === 0) args.push('--no-sandbox');
  const browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium', args, headless: true,
  });
  try {
    // two contexts: each page its own sessionStorage, as two browsers
    const pages = {};
    for (const who of ['alice', 'bob']) {
      const ctx = await browser.createBrowserContext();
      const page = await ctx.newPage();
      await page.setViewport({ width: 900, height: 600 });
      page.setDefaultTimeout(8000);
      page.on('pageerror', (e) => errors.push(who + ': ' + e.message));
      pages[who] = page;
    }
    const a = pages.alice, b = pages.bob;
    await signIn(a, cfg.phones.alice);
    await signIn(b, cfg.phones.bob);
    out.signedIn = true;
    // app.css applied (served as text/css)
    out.styled = await a.$eval('header',
                               (e) => getComputedStyle(e).display === 'flex');

    // alice: a chat with bob's number
    await a.type('#new-phone', cfg.phones.bob);
    await a.click('#start');
    await a.waitForSelector('#chat', { visible: true });
    await a.waitForFunction(
        () => document.querySelectorAll('#chats li').length === 1);

    // bob: the chat appears live (chat_created) and he opens it
    await b.waitForSelector('#chats li', { timeout: 5000 });
    // in one step: the list is drawn again as names arrive
    await b.$eval('#chats li', (li) => li.click());
    await b.waitForSelector('#chat', { visible: true });
    out.bobTitle = await b.$eval('#chat-title', (e) => e.textContent);

    // alice types: bob sees it
    await a.type('#text', 'hello from', { delay: 20 });
    await b.waitForFunction(
        () => /is typing/.test(document.getElementById('typing')
                                   .textContent), { timeout: 5000 });
    out.typing = await b.$eval('#typing', (e) => e.textContent);

    // she sends: it arrives on bob's page, which marks it read
    await a.type('#text', ' the browser');
    await a.click('#send');
    await b.waitForFunction(() => [...document.querySelectorAll(
        '#messages li')].some((li) => li.textContent === 'hello from the '
                               + 'browser'), { timeout: 5000 });
    out.received = await b.$eval('#messages li:last-child',
                                 (e) => e.textContent);
    out.typingGone = await b.waitForFunction(() => document.getElementById(
        'typing').textContent === '', { timeout: 8000 }).then(() => true);

    // alice sees the read receipt on her message
    await a.waitForSelector('#messages li.mine.read', { timeout: 5000 });
    out.receipt = await a.$eval('#messages li.mine .status',
                                (e) => e.textContent);
    out.aliceList = await a.$eval('#chats li .last', (e) => e.textContent);

    for (const who of ['alice', 'bob']) {
      await pages[who].screenshot({
        path: path.join(cfg.shots, 'web-client-' + who + '.png') });
    }
  } catch (e) {
    // what the pages said, for the failure's message
    for (const p of await browser.pages()) {
      const said = await p.$eval('#error', (el) => el.textContent)
          .catch(() => '');
      if (said) errors.push(said);
    }
    throw e;
  } finally {
    await browser.close();
  }
}

main().then(() => {
  out.pageErrors = errors.join('; ') || 'none';
  console.log(JSON.stringify(out));
}, (e) => {
  out.failed = e.message;
  out.pageErrors = errors.join('; ') || 'none';
  console.log(JSON.stringify(out));
});
