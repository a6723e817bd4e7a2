// Import the built package, failing (never skipping) with the command to run when it is missing.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REPO = path.resolve(PACKAGE, '..');
export const RUNSTATE_FIXTURES = path.join(REPO, 'tests', 'fixtures', 'runstate');
export const FIXTURES = path.join(PACKAGE, 'test', 'fixtures');

if (!fs.existsSync(path.join(PACKAGE, 'node_modules', '@openai', 'agents'))) {
  throw new Error(
    'typescript/node_modules is missing: run `npm ci --prefix typescript --no-audit --no-fund`',
  );
}
if (!fs.existsSync(path.join(PACKAGE, 'dist', 'index.js'))) {
  throw new Error('typescript/dist is missing: run `npm run --prefix typescript build`');
}

export const timestep = await import(path.join(PACKAGE, 'dist', 'index.js'));

export function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}
