"""Questions without a language model: extractive drafts from the document's own sentences."""
