#!/usr/bin/env node
import { runDevCli } from "./dev-cli.js";

process.exitCode = await runDevCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
