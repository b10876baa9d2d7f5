/** Rewrites the tool table in docs/mcp-server.md; `node dist/scripts/gen-tool-table.js`. */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderToolTable, spliceToolTable } from '../src/principal/tools/table.js';

const path = new URL('../../docs/mcp-server.md', import.meta.url);
writeFileSync(path, spliceToolTable(readFileSync(path, 'utf8'), renderToolTable()));
