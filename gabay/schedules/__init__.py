"""Scheduled jobs: the schedules file, cron arithmetic, the one leader's lease and firing a slot once."""
