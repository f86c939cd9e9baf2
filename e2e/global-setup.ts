// Seeds a fresh data directory through the real CLI (organisation, people and their roles, a
// policy, a git repository whose commit is authored by carol, a release linking it), then
// starts `trailmark serve` on a free loopback port. The URL and the server's pid go to
// .state.json for the tests and the teardown.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..');
export const BIN = process.env.TRAILMARK_BIN || path.join(root, 'target', 'debug', 'trailmark');
export const PASSWORD = 'correct horse battery staple';

function tm(dataDir: string, args: string[], input?: string): string {
  return execFileSync(BIN, ['--data-dir', dataDir, ...args], {
    input,
    encoding: 'utf8',
    env: { ...process.env, TRAILMARK_DEFAULT_ORG: 'acme', RUST_LOG: 'warn' },
  });
}

function git(repo: string, args: string[]) {
  execFileSync('git', args, {
    cwd: repo,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Carol Coder',
      GIT_AUTHOR_EMAIL: 'carol@example.com',
      GIT_COMMITTER_NAME: 'Carol Coder',
      GIT_COMMITTER_EMAIL: 'carol@example.com',
      GIT_AUTHOR_DATE: '2026-11-20T10:00:00Z',
      GIT_COMMITTER_DATE: '2026-11-20T10:00:00Z',
    },
  });
}

export default async function globalSetup() {
  if (!fs.existsSync(BIN)) {
    throw new Error(`${BIN} is missing: build it with \`cargo build --locked -p trailmark-cli\``);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trailmark-e2e-'));
  const data = path.join(work, 'data');
  tm(data, ['init']);
  tm(data, ['org', 'create', 'acme']);
  tm(data, ['org', 'project', 'acme/payments']);
  const people: [string, string][] = [
    ['alice', 'approver'],
    ['carol', 'approver'],
    ['rita', 'release-manager'],
    ['audra', 'auditor'],
  ];
  for (const [name, role] of people) {
    tm(data, ['user', 'create', name, '--org', 'acme'], PASSWORD + '\n');
    tm(data, ['user', 'grant', name, '--role', role, '--scope', 'acme']);
  }
  fs.writeFileSync(
    path.join(data, 'people.json'),
    JSON.stringify({
      people: [
        { id: 'carol', identities: ['email:carol@example.com', 'person:carol'] },
        { id: 'alice', identities: ['person:alice'] },
        { id: 'rita', identities: ['person:rita'] },
      ],
    }),
  );
  const policy = path.join(work, 'acme.toml');
  fs.writeFileSync(
    policy,
    [
      'name = "acme"',
      '[approvals.release]',
      'roles = ["approver"]',
      'min = 1',
      '[gates.production]',
      'checks = ["approvals", "separation_of_duties"]',
      '',
    ].join('\n'),
  );
  tm(data, ['policy', 'apply', policy, '--policy', 'acme', '--as', 'person:rita']);

  const repo = path.join(work, 'repo');
  fs.mkdirSync(repo);
  git(repo, ['init', '-q', '-b', 'main']);
  fs.writeFileSync(path.join(repo, 'pay.txt'), 'fee = 2\n');
  git(repo, ['add', 'pay.txt']);
  git(repo, ['commit', '-q', '-m', 'PAY-7: lower the fee']);
  const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
  tm(data, ['import', 'git', repo]);
  tm(data, [
    'release', 'create', '--project', 'acme/payments', '--name', 'pay', '--version', '1.0',
    '--env', 'production', '--policy', 'acme', '--as', 'person:rita',
  ]);
  tm(data, ['release', 'link', 'acme/payments/pay@1.0', '--commit', sha, '--ticket', 'PAY-7', '--policy', 'acme', '--as', 'person:rita']);

  const server = spawn(BIN, ['--data-dir', data, 'serve', '--listen', '127.0.0.1:0'], {
    env: { ...process.env, TRAILMARK_DEFAULT_ORG: 'acme', RUST_LOG: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: false,
  });
  const url: string = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${seen}`)), 30_000);
    server.stderr!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const m = seen.match(/serving (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${seen}`)));
  });
  server.stderr!.resume();
  fs.writeFileSync(
    path.join(__dirname, '.state.json'),
    JSON.stringify({ url, pid: server.pid, work, sha, password: PASSWORD }),
  );
  server.unref();
}
