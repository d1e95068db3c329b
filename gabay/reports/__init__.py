"""Teacher PDF reports of an exam: flagged items, the content from the store, the PDF, its email."""
