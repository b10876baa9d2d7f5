/** Prints docs/capabilities.md; `node dist/scripts/gen-capability-table.js > docs/capabilities.md`. */
import { renderCapabilitiesDoc } from '../src/shared/model/index.js';

process.stdout.write(renderCapabilitiesDoc());
