// Enqueue an exam submission over HTTP from Node.js (18 or later: fetch is built in), then poll
// its job until it finished. Usage:
//   GABAY_URL=http://127.0.0.1:8080 GABAY_TOKEN=gbt_... node examples/http/enqueue.mjs submission.json
import { readFile } from "node:fs/promises";

const base = process.env.GABAY_URL ?? "http://127.0.0.1:8080";
const headers = {
  Authorization: `Bearer ${process.env.GABAY_TOKEN}`,
  "Content-Type": "application/json",
};

const submission = JSON.parse(await readFile(process.argv[2], "utf8"));
const answer = await fetch(`${base}/api/v1/submissions`, {
  method: "POST", headers, body: JSON.stringify(submission),
});
const body = await answer.json();
if (answer.status === 422) {
  for (const { field, message } of body.fields) console.error(`${field ?? "(body)"}: ${message}`);
  process.exit(2);
}
if (answer.status !== 202) throw new Error(`HTTP ${answer.status}: ${body.error}`);
console.log(`job ${body.job_id}`);

// Poll the job (the same job id comes back for the same response_id: re-sending is safe).
const timeoutMs = Number(process.env.GABAY_WAIT_MS ?? 60000);
const deadline = Date.now() + timeoutMs;
let pause = 100;
for (;;) {
  const job = await (await fetch(`${base}/api/v1/jobs/${body.job_id}`, { headers })).json();
  if (job.status === "succeeded" || job.status === "failed") {
    console.log(JSON.stringify({ job_id: job.id, status: job.status, error: job.error }));
    process.exit(job.status === "succeeded" ? 0 : 1);
  }
  if (Date.now() > deadline) throw new Error(`job ${job.id} still ${job.status}`);
  await new Promise((resolve) => setTimeout(resolve, pause));
  pause = Math.min(pause * 2, 1000);
}
