import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Time is injected (src/clock): only the clock module touches the platform's timers and
// clocks, so the simulator and tests decide how time passes for everything else.
const FOLDERS = ['network', 'node', 'log', 'raft', 'group', 'cluster'];
const RAW_TIME = /\b(setTimeout|setInterval|clearTimeout|clearInterval|queueMicrotask)\(|\bDate\.now\(|\bperformance\.now\(|\bAbortSignal\.timeout\(/;

function sourceFiles(folder: string): string[] {
  const root = join(import.meta.dirname, '../../src', folder);
  let entries: string[];
  try {
    entries = readdirSync(root, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return entries.filter((name) => name.endsWith('.ts')).map((name) => join(root, name));
}

describe('the injected clock', () => {
  it(`no raw timer or clock call in src/{${FOLDERS.join(',')}} outside src/clock`, () => {
    const offending: string[] = [];
    for (const file of FOLDERS.flatMap(sourceFiles)) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const code = line.replace(/\/\/.*$/, '').trimStart();
          if (code.startsWith('*')) return; // a doc comment's example
          if (RAW_TIME.test(code)) offending.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offending).toEqual([]);
  });
});
