/**
 * Config helpers: each service's `loadConfig(env = process.env)` reads the environment in one
 * place, collects every problem, and returns a frozen typed object.
 */
import { StafettError } from "./errors.js";

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads variables and records every problem, so all of them are reported at once. */
export class ConfigReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: Env) {}

  string(name: string, fallback?: string): string {
    const v = this.env[name];
    if (v !== undefined && v !== "") return v;
    if (fallback !== undefined) return fallback;
    this.problems.push(`${name} is required`);
    return "";
  }

  optional(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === "" ? undefined : v;
  }

  integer(name: string, fallback: number, min = 0): number {
    const v = this.env[name];
    if (v === undefined || v === "") return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      this.problems.push(`${name} must be an integer >= ${min}`);
      return fallback;
    }
    return n;
  }

  /** A duration: a number with unit ms, s, m or h (e.g. "90s", "12h"). */
  duration(name: string, fallbackMs: number): number {
    const v = this.env[name];
    if (v === undefined || v === "") return fallbackMs;
    const ms = parseDuration(v);
    if (ms === undefined) {
      this.problems.push(`${name} must be a duration such as 500ms, 90s, 15m or 12h`);
      return fallbackMs;
    }
    return ms;
  }

  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const v = this.env[name];
    if (v === undefined || v === "") return fallback;
    if ((values as readonly string[]).includes(v)) return v as T;
    this.problems.push(`${name} must be one of ${values.join(", ")}`);
    return fallback;
  }

  list(name: string, fallback: readonly string[] = []): string[] {
    const v = this.env[name];
    if (v === undefined || v === "") return [...fallback];
    return v
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }

  problem(message: string): void {
    this.problems.push(message);
  }

  /** Throws one error naming every problem; otherwise freezes and returns the config. */
  done<T extends object>(config: T): Readonly<T> {
    if (this.problems.length > 0) {
      throw new StafettError(
        "ERR_CONFIG_INVALID",
        `configuration is invalid: ${this.problems.join("; ")}`,
        {
          reason: "invalid",
          issues: this.problems.map((message) => ({
            field: message.split(" ")[0] ?? "",
            reason: "invalid",
            message,
          })),
        },
      );
    }
    return Object.freeze(config);
  }
}

export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (m === null) return undefined;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    m[2] as "ms" | "s" | "m" | "h" | "d"
  ];
  return Number(m[1]) * unit;
}
