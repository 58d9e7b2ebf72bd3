/**
 * `npm run profiles`: regenerates the national pack in profiles/ from src/profiles/definitions
 * (snapshots, the generated code tables, the ImplementationGuide, required.json). Files of the
 * pack's folders that the sources no longer produce are removed; profiles/README.md is left
 * alone. `--check` writes nothing and exits 1 when a committed file is stale.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildPack, serialize } from '../profiles/build';

const PROFILES_DIR = path.resolve(__dirname, '..', '..', 'profiles');

function existingFiles(): string[] {
  const found: string[] = [];
  const visit = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith('.json')) found.push(path.relative(PROFILES_DIR, full).split(path.sep).join('/'));
    }
  };
  if (fs.existsSync(PROFILES_DIR)) visit(PROFILES_DIR);
  return found;
}

function main(): void {
  const check = process.argv.includes('--check');
  const { files } = buildPack();
  const stale: string[] = [];
  let written = 0;
  for (const [file, content] of files) {
    const full = path.join(PROFILES_DIR, file);
    const text = serialize(content);
    if (fs.existsSync(full) && fs.readFileSync(full, 'utf8') === text) continue;
    stale.push(file);
    if (!check) {
      fs.mkdirSync(path.dirname(full), { recursive: true });
      fs.writeFileSync(full, text);
      written++;
    }
  }
  const extra = existingFiles().filter((file) => !files.has(file));
  for (const file of extra) {
    stale.push(`${file} (not produced any more)`);
    if (!check) fs.unlinkSync(path.join(PROFILES_DIR, file));
  }
  if (check) {
    if (stale.length) {
      console.error(`profiles/ is stale; run npm run profiles:\n  ${stale.join('\n  ')}`);
      process.exit(1);
    }
    console.log(`profiles/ is up to date (${files.size} files)`);
    return;
  }
  console.log(`profiles/: ${files.size} files, ${written} written, ${extra.length} removed`);
}

main();
