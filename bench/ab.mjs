// Runs bench/ab.html in headless Chromium and prints its lines (see "Comparing two builds" in
// bench/README.md): node bench/ab.mjs 'http://localhost:8765/bench/ab.html?pkgs=base,new&...'
// playwright-core is the one `cargo xtask setup` installs for the end-to-end tests; the flags are
// theirs too (webdriver.json: no network, runnable as root).
import { chromium } from '../xtask/node_modules/playwright-core/index.mjs';
import { BASE_FLAGS } from '../xtask/e2e/chromium-flags.mjs';

const url = process.argv[2];
if (!url) {
  console.error('usage: node bench/ab.mjs <url of bench/ab.html with its query>');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: BASE_FLAGS,
});
let failed = false;
try {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.text().startsWith('ERROR')) failed = true;
    if (m.type() === 'log') console.log(m.text());
  });
  await page.goto(url);
  await page.waitForFunction(() => document.title === 'done', null, { timeout: 0 });
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
