/**
 * `npm run release [-- --out DIR] [-- --no-packages]`: builds the release
 * artefacts (dom0, principal and template archives; the RPMs and the deb
 * where rpmbuild and dpkg-deb are installed) into release/, each with a
 * .sha256. Same checkout and SOURCE_DATE_EPOCH, same archive bytes.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildRelease } from './artefacts/build.js';

const { values } = parseArgs({
  options: { out: { type: 'string' }, 'no-packages': { type: 'boolean' } },
  strict: true,
});
// compiled to dist/scripts/release.js
const repo = join(import.meta.dirname, '..', '..');
const out = values.out ? resolve(values.out) : join(repo, 'release');
const report = await buildRelease({ repo, out, packages: !values['no-packages'] });
for (const a of report.artefacts) console.log(`${join(out, a)} (+ .sha256)`);
for (const s of report.skipped) console.log(`not built: ${s}`);
