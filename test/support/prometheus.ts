/**
 * A small parser of the Prometheus text exposition format (0.0.4), as a scraper reads it: every
 * sample with its name, labels and value, and each metric family's TYPE. It refuses lines it
 * cannot read, so a malformed exposition fails the test that scrapes it.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** TYPE of each metric family, by name. */
  types: Map<string, string>;
  /** The one sample of `name` whose labels include `labels`; undefined when none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** The samples of `name` whose labels include `labels`. */
  all(name: string, labels?: Record<string, string>): Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

export function parsePrometheus(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m =
        /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) types.set(m[1], m[2]);
      else if (!/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line))
        throw new Error(`line ${i + 1}: not a HELP or TYPE comment`);
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (name === undefined) throw new Error(`line ${i + 1}: no metric name`);
    let rest = line.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      rest = rest.slice(1);
      while (!rest.startsWith("}")) {
        const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/.exec(rest);
        if (m?.[1] === undefined || m[2] === undefined)
          throw new Error(`line ${i + 1}: bad label set`);
        labels[m[1]] = m[2].replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1");
        rest = rest.slice(m[0].length);
      }
      rest = rest.slice(1);
    }
    const parts = rest.trim().split(/\s+/);
    const valueText = parts[0];
    if (valueText === undefined || parts.length > 2)
      throw new Error(`line ${i + 1}: bad value: ${line}`);
    // As Prometheus reads it (Go's ParseFloat): NaN and Inf in any case (prom-client writes "Nan").
    const value = /^[+-]?inf$/i.test(valueText)
      ? valueText.startsWith("-")
        ? -Infinity
        : Infinity
      : /^nan$/i.test(valueText)
        ? NaN
        : Number(valueText);
    if (Number.isNaN(value) && !/^nan$/i.test(valueText))
      throw new Error(`line ${i + 1}: bad value: ${line}`);
    samples.push({ name, labels, value });
  }
  const matches = (s: Sample, name: string, labels: Record<string, string>): boolean =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  return {
    samples,
    types,
    all: (name, labels = {}) => samples.filter((s) => matches(s, name, labels)),
    value(name, labels = {}) {
      const found = samples.filter((s) => matches(s, name, labels));
      if (found.length > 1)
        throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
      return found[0]?.value;
    },
  };
}

/** Scrapes a /metrics URL and parses it; throws unless it answers 200 in the text format. */
export async function scrape(url: string): Promise<Exposition> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  const type = res.headers.get("content-type") ?? "";
  if (!type.startsWith("text/plain; version=0.0.4"))
    throw new Error(`${url} is not the Prometheus text format (${type})`);
  return parsePrometheus(await res.text());
}
