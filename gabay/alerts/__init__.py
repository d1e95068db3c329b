"""Alerts: rules over the cluster's Redis state, incidents deduplicated in Redis, and the channels
(email, Slack, a JSON webhook) that tell the operators once when a problem starts and when it ends."""
