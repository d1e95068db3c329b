#!/bin/sh
# Enqueue an exam submission over HTTP with curl, then read its job.
#   GABAY_URL=http://127.0.0.1:8080 GABAY_TOKEN=gbt_... examples/http/enqueue.sh submission.json
set -eu
base=${GABAY_URL:-http://127.0.0.1:8080}
curl -sS -X POST "$base/api/v1/submissions" \
  -H "Authorization: Bearer $GABAY_TOKEN" -H "Content-Type: application/json" \
  --data-binary @"$1"
# -> {"job_id": "fb-...", "status_url": "/api/v1/jobs/fb-..."}   (HTTP 202)
# then: curl -sS -H "Authorization: Bearer $GABAY_TOKEN" "$base/api/v1/jobs/fb-..."
