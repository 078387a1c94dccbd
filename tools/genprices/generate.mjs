// generate.mjs writes the gateway's built-in model catalog
// (gateway/modelinfo/prices.json) from the npm package
// @pydantic/genai-prices (MIT), at the version package-lock.json pins.
//
// Regenerate with one command from the repository root:
//
//	go generate ./gateway/modelinfo
//
// (that runs `npm ci` and `npm run generate` here). To move to a newer
// release, change the version in package.json, run `npm install` here, then
// the command above, and commit package.json, package-lock.json and
// prices.json together.
//
// The package does not export its data: dist/index.js starts with
// `const E = [` (the providers), used by its own functions. This script
// copies that file with an export of the array appended and imports the
// copy. What it keeps, per provider: id, fallback_model_providers and the
// models; per model: id, match, context_window and the token prices
// (input, output, cache read, cache write; per million tokens, numbers or
// tiered {base, tiers: [{start, price}]} as in the source). Audio, image,
// request and search prices, names, descriptions and provider extractors
// are dropped.
//
// Conditional prices (an array of {constraint?, prices}): the entry without
// a constraint and every start_date entry are kept, in order, as periods
// ("from" is the start date; the gateway uses the latest period started
// when it loads its config). Time-of-day entries (DeepSeek's peak hours)
// are folded in: each period takes, price by price, the highest of its own
// and the windows' rates, so cost errs high rather than low.
//
// Match rules are kept as written, except that a regex the Go side (RE2)
// cannot run is translated when it has the one form the data uses,
// "^(?!X)" (a negative look-ahead at the start), into {"not": {"regex":
// "^X"}}; any other look-around or back-reference stops the generator.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PKG = '@pydantic/genai-prices';
const out = process.argv[2];
if (!out) {
  console.error('usage: node generate.mjs OUTPUT.json');
  process.exit(2);
}

// The package's exports map hides package.json, so read it from node_modules.
const pkgDir = fileURLToPath(new URL(`./node_modules/${PKG}/`, import.meta.url));
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const src = fs.readFileSync(path.join(pkgDir, 'dist', 'index.js'), 'utf8');
const decl = src.match(/^const (\w+) = \[/);
if (!decl) {
  throw new Error(`${PKG} ${pkg.version}: dist/index.js does not start with "const X = [" any more`);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'genprices-'));
const copy = path.join(tmp, 'index.mjs');
fs.writeFileSync(copy, `${src}\nexport { ${decl[1]} as __data };\n`);
let data;
try {
  ({ __data: data } = await import(pathToFileURL(copy).href));
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

// Token prices kept, source key -> output key.
const PRICE_KEYS = {
  input_mtok: 'input',
  output_mtok: 'output',
  cache_read_mtok: 'cache_read',
  cache_write_mtok: 'cache_write',
};

function price(where, v) {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  if (v && typeof v === 'object' && typeof v.base === 'number' && Array.isArray(v.tiers)) {
    const tiers = v.tiers.map((t) => {
      if (!Number.isSafeInteger(t.start) || t.start < 0 || typeof t.price !== 'number' || t.price < 0) {
        throw new Error(`${where}: bad tier ${JSON.stringify(t)}`);
      }
      return { start: t.start, price: t.price };
    });
    return { base: v.base, tiers };
  }
  throw new Error(`${where}: bad price ${JSON.stringify(v)}`);
}

function prices(where, p) {
  const o = {};
  for (const [k, name] of Object.entries(PRICE_KEYS)) {
    if (p[k] !== undefined) o[name] = price(`${where}.${k}`, p[k]);
  }
  return o;
}

function periods(where, ps) {
  if (!Array.isArray(ps)) return [prices(where, ps)];
  const kept = [];
  const peaks = [];
  for (const [i, c] of ps.entries()) {
    const con = c.constraint;
    if (con === undefined || con === null) {
      kept.push(prices(`${where}[${i}]`, c.prices));
    } else if (con.start_date !== undefined && (con.type === undefined || con.type === 'start_date')) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(con.start_date)) throw new Error(`${where}[${i}]: bad start_date`);
      kept.push({ from: con.start_date, ...prices(`${where}[${i}]`, c.prices) });
    } else if (con.type === 'time_of_date' || con.start_time !== undefined) {
      peaks.push(prices(`${where}[${i}]`, c.prices));
    } else {
      throw new Error(`${where}[${i}]: unknown price constraint ${JSON.stringify(con)}`);
    }
  }
  if (kept.length === 0 || kept[0].from !== undefined) {
    throw new Error(`${where}: no unconstrained price to start from`);
  }
  // A time-of-day entry is a daily window with its own rate (DeepSeek's
  // peak hours). The gateway prices a deployment with one rate, so each
  // period takes, price by price, the highest of its own rate and the
  // windows': cost errs high off-peak, and a budget is never undercounted.
  for (const peak of peaks) {
    for (const period of kept) {
      for (const [k, v] of Object.entries(peak)) {
        const cur = period[k];
        if (typeof v !== 'number' || (cur !== undefined && typeof cur !== 'number')) {
          throw new Error(`${where}: tiered time-of-day prices need a rule`);
        }
        period[k] = cur === undefined ? v : Math.max(cur, v);
      }
    }
  }
  return kept;
}

const LOOKAHEAD_AT_START = /^\^\(\?!(.*)\)$/;
const UNSUPPORTED = /\(\?[=!<]|\\[1-9]|\\k</;

function match(where, m) {
  if (m.or) return { or: m.or.map((x, i) => match(`${where}.or[${i}]`, x)) };
  if (m.and) return { and: m.and.map((x, i) => match(`${where}.and[${i}]`, x)) };
  for (const k of ['equals', 'starts_with', 'ends_with', 'contains']) {
    if (typeof m[k] === 'string') return { [k]: m[k] };
  }
  if (typeof m.regex === 'string') {
    const la = m.regex.match(LOOKAHEAD_AT_START);
    if (la && !UNSUPPORTED.test(la[1])) return { not: { regex: `^${la[1]}` } };
    if (UNSUPPORTED.test(m.regex)) throw new Error(`${where}: regex ${m.regex} needs a translation for RE2`);
    return { regex: m.regex };
  }
  throw new Error(`${where}: unknown match ${JSON.stringify(m)}`);
}

const providers = [];
let models = 0;
for (const p of data) {
  const ms = [];
  for (const m of p.models) {
    const where = `${p.id}/${m.id}`;
    const entry = { id: m.id, match: match(where, m.match) };
    if (m.context_window !== undefined) {
      if (!Number.isSafeInteger(m.context_window) || m.context_window <= 0) {
        throw new Error(`${where}: bad context_window ${m.context_window}`);
      }
      entry.context_window = m.context_window;
    }
    const ps = periods(where, m.prices);
    if (ps.some((x) => Object.keys(x).some((k) => k !== 'from'))) entry.prices = ps;
    if (entry.context_window === undefined && entry.prices === undefined) continue;
    ms.push(entry);
  }
  const prov = { id: p.id };
  if (p.fallback_model_providers?.length) prov.fallback = [...p.fallback_model_providers];
  prov.models = ms;
  providers.push(prov);
  models += ms.length;
}

const doc = { source: pkg.name, version: pkg.version, license: pkg.license, providers };
// One provider per line: compact, yet a regeneration's diff stays readable
// by provider.
const body = providers.map((p) => JSON.stringify(p)).join(',\n');
const head = JSON.stringify({ source: doc.source, version: doc.version, license: doc.license });
fs.writeFileSync(out, `${head.slice(0, -1)},"providers":[\n${body}\n]}\n`);
console.log(`${out}: ${pkg.name} ${pkg.version}, ${providers.length} providers, ${models} models`);
