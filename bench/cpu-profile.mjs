// Loaded into a service process with `NODE_OPTIONS=--import=<this file>` by `npm run bench --
// --profile` (Node 20 refuses --cpu-prof in NODE_OPTIONS): records a V8 CPU profile from start
// to SIGTERM and writes it to $STAFETT_BENCH_PROFILE_DIR/<service>-<pid>.cpuprofile.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { basename, dirname, join } from "node:path";

const dir = process.env.STAFETT_BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 500 });
  session.post("Profiler.start");
  const service = basename(dirname(dirname(process.argv[1] ?? "service")));
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    session.post("Profiler.stop", (err, result) => {
      if (!err)
        writeFileSync(
          join(dir, `${service}-${process.pid}.cpuprofile`),
          JSON.stringify(result.profile),
        );
    });
  };
  process.once("SIGTERM", write);
  process.once("exit", write);
}
