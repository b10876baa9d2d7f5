/**
 * A template's root image is seeded once per process for each set of
 * in-qube services: a later seeding with the same services writes the
 * first one's bytes, and services changed or moved seed their own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { seedRootImage } from '../../src/sim/sandbox/root-layer.js';
import { defaultServicesDir } from '../../src/sim/sandbox/sandboxes.js';
import { weakenedFile } from '../../verify/weakened-module.js';

type Seed = typeof seedRootImage;

/** Seeds from a copy of the services with one file's text replaced, then changes that file again: both images. */
async function seedChanged(seed: Seed, dir: string): Promise<[Buffer, Buffer]> {
  const services = join(dir, 'services');
  await cp(defaultServicesDir(), services, { recursive: true });
  const exec = join(services, 'qmcp.Exec');
  const text = await readFile(exec, 'utf8');
  await writeFile(exec, `${text}# marker-one\n`);
  await seed(join(dir, 'one.img'), services);
  await writeFile(exec, `${text}# marker-two\n`);
  await seed(join(dir, 'two.img'), services);
  return [await readFile(join(dir, 'one.img')), await readFile(join(dir, 'two.img'))];
}

test('a second seeding with the same services is the first one’s image; changed services seed their own', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-seed-'));
  try {
    await seedRootImage(join(dir, 'a.img'), defaultServicesDir());
    await seedRootImage(join(dir, 'b.img'), defaultServicesDir());
    const [a, b] = [await readFile(join(dir, 'a.img')), await readFile(join(dir, 'b.img'))];
    assert.ok(a.length > 0);
    assert.ok(a.equals(b));
    const [one, two] = await seedChanged(seedRootImage, dir);
    assert.ok(one.includes('# marker-one') && !one.includes('# marker-two'));
    assert.ok(two.includes('# marker-two') && !two.includes('# marker-one'), 'the image seeded after the change holds the changed service');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('weakened: seeds told apart by the services’ names alone are caught serving the image of services since changed', async () => {
  const weak = weakenedFile('sim/sandbox/root-layer', 'hash.update(await readFile(path));', 'void 0;');
  const seed = ((await import(pathToFileURL(weak).href)) as { seedRootImage: Seed }).seedRootImage;
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-seed-'));
  try {
    const [, two] = await seedChanged(seed, dir);
    assert.ok(two.includes('# marker-one') && !two.includes('# marker-two'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
