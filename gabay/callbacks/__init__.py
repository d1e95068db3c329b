"""Signed result callbacks of any job (questions, feedback): signing, the POST, the recorded delivery."""
