import * as fs from 'node:fs';
import * as path from 'node:path';

export default async function globalTeardown() {
  const file = path.join(__dirname, '.state.json');
  if (!fs.existsSync(file)) return;
  const state = JSON.parse(fs.readFileSync(file, 'utf8'));
  try {
    process.kill(state.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  fs.rmSync(state.work, { recursive: true, force: true });
  fs.rmSync(file);
}
