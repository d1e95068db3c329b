"""One module per revision of the results store's schema, oldest first."""
