"""The durable results store: exams, submissions, question results and the LLM cost ledger in SQL."""
