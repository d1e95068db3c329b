"""The operator console's actions on jobs: find and page through them, view one, retry, cancel."""
