"""Personal feedback on an exam submission: the contract, scoring, the writer, the email and the pipeline."""
