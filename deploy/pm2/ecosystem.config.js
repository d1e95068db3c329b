// gabay under PM2: `pm2 start deploy/pm2/ecosystem.config.js` (settings from the environment or a
// .env file in cwd). PM2 runs the Python `gabay` command with the virtualenv's interpreter.
const VENV = process.env.GABAY_VENV || "/opt/gabay/venv";
const DRAIN_TIMEOUT = Number(process.env.DRAIN_TIMEOUT || 30);

module.exports = {
  apps: [
    {
      name: "gabay-workers",
      script: `${VENV}/bin/gabay`,
      args: "workers --max-memory 1G",
      interpreter: `${VENV}/bin/python`,
      cwd: process.env.GABAY_HOME || "/var/lib/gabay",
      exec_mode: "fork",
      instances: 1,          // one supervisor; WORKER_PROCESSES sets the worker processes
      autorestart: true,
      kill_signal: "SIGTERM",
      treekill: false,       // signal gabay's supervisor only; it forwards once and every worker drains
      // > DRAIN_TIMEOUT + 10 s (Dramatiq's own shutdown), so PM2 never SIGKILLs a drain.
      kill_timeout: (DRAIN_TIMEOUT + 15) * 1000,
      // PM2 watches only the supervisor's own memory; --max-memory recycles each worker process.
      max_memory_restart: "300M",
      env: { PYTHONUNBUFFERED: "1", DRAIN_TIMEOUT: String(DRAIN_TIMEOUT) },
    },
    {
      name: "gabay-dashboard",
      script: `${VENV}/bin/gabay`,
      args: "dashboard --host 127.0.0.1 --port 8080",
      interpreter: `${VENV}/bin/python`,
      cwd: process.env.GABAY_HOME || "/var/lib/gabay",
      autorestart: true,
      kill_timeout: 15000,
      max_memory_restart: "400M",
      env: { PYTHONUNBUFFERED: "1" },
    },
  ],
};
