// The web UI end to end in Chromium against a real `trailmark serve`: sign in, open a release,
// be refused as its author, approve it as an eligible approver, export a dossier, search, and
// check a record's proof. Screenshots of the main pages go to e2e/screenshots/.
import { expect, test, type Page } from '@playwright/test';
import * as fs from 'node:fs';
import * as path from 'node:path';

const state = () => JSON.parse(fs.readFileSync(path.join(__dirname, '..', '.state.json'), 'utf8'));
const shots = path.join(__dirname, '..', 'screenshots');
fs.mkdirSync(shots, { recursive: true });

async function signIn(page: Page, user: string) {
  const { url, password } = state();
  await page.goto(`${url}/ui/`);
  // Not signed in: sent to the sign-in form, and back afterwards.
  await expect(page).toHaveURL(/\/ui\/login\?next=/);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText(`Signed in as ${user}`)).toBeVisible();
}

async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/ui\/login/);
}

test('a wrong password is refused with a clear message', async ({ page }) => {
  const { url } = state();
  await page.goto(`${url}/ui/login`);
  await page.screenshot({ path: path.join(shots, 'login.png'), fullPage: true });
  await page.getByLabel('User name').fill('alice');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Unknown user name or wrong password.');
});

test('the author is refused, an eligible approver approves, with the keyboard', async ({ page }) => {
  await signIn(page, 'carol');
  await page.getByRole('link', { name: 'pay 1.0' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'pay 1.0' })).toBeVisible();
  // The author is not offered the decision, and is told why.
  await expect(page.getByRole('button', { name: 'Approve' })).toHaveCount(0);
  await expect(page.locator('#ineligible')).toContainText('separation of duties: carol may not approve');
  await page.screenshot({ path: path.join(shots, 'refused.png'), fullPage: true });
  await signOut(page);

  await signIn(page, 'alice');
  await page.getByRole('link', { name: 'Approvals' }).click();
  await expect(page.getByRole('heading', { name: 'Waiting for your decision' })).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'approvals.png'), fullPage: true });
  await page.getByRole('link', { name: 'release:acme/payments/pay@1.0' }).click();
  const digest = await page.locator('#evidence-digest').textContent();
  expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  await page.screenshot({ path: path.join(shots, 'release.png'), fullPage: true });
  // Keyboard only: focus the comment, type, tab to Approve, press Enter.
  await page.getByLabel('Comment (optional)').focus();
  await page.keyboard.type('checked the diff and the tests');
  await page.keyboard.press('Tab');
  await expect(page.getByRole('button', { name: 'Approve' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('status')).toHaveText('Your approval was recorded.');
  await expect(page.locator('section', { has: page.getByRole('heading', { name: 'Approval' }) })).toContainText('Countedalice');
  await page.getByRole('link', { name: 'Approvals' }).click();
  await expect(page.getByText('Nothing is waiting for an approval')).toBeVisible();
});

test('an auditor exports the dossier, searches, and sees a verified proof', async ({ page }) => {
  const { sha } = state();
  await signIn(page, 'audra');
  await page.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true });
  await page.getByRole('link', { name: 'pay 1.0' }).click();
  // No approve button for an auditor.
  await expect(page.getByRole('button', { name: 'Approve' })).toHaveCount(0);
  const downloadPromise = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Dossier (JSON, self-verifying)' }).click();
  const download = await downloadPromise;
  const file = await download.path();
  const dossier = JSON.parse(fs.readFileSync(file!, 'utf8'));
  expect(dossier.format).toBe('trailmark.dossier/v3');
  expect(dossier.release).toBe('acme/payments/pay@1.0');
  const pdfPromise = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Dossier (PDF)' }).click();
  const pdf = fs.readFileSync((await (await pdfPromise).path())!);
  expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');

  await page.getByRole('link', { name: 'Search' }).click();
  await page.getByLabel('Look for').selectOption('commit');
  await page.getByLabel('Identifier').fill(sha);
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByRole('cell', { name: 'git.commit' })).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'search.png'), fullPage: true });
  await page.getByRole('row', { name: /git\.commit/ }).getByRole('link').click();
  await expect(page.locator('#proof-status')).toContainText('Verified');
  await page.screenshot({ path: path.join(shots, 'record.png'), fullPage: true });

  await page.getByRole('link', { name: 'Log & audit' }).click();
  await page.getByRole('button', { name: 'Verify the whole log now' }).click();
  await expect(page.getByRole('status')).toHaveText('Full verification passed.');
  await expect(page.getByRole('cell', { name: 'access.login' }).first()).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'log.png'), fullPage: true });

  await page.getByRole('link', { name: 'Metrics' }).click();
  await expect(page.getByRole('heading', { name: 'Delivery metrics' })).toBeVisible();
  await expect(page.locator('#chart-deployment_frequency svg')).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'metrics.png'), fullPage: true });

  await page.getByRole('link', { name: 'Policies' }).click();
  await expect(page.getByText(/^In force: #\d+/)).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'policies.png'), fullPage: true });
});
