"""Question generation from a document: request models, retrieval, prompts, checks and the three stages."""
