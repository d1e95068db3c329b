"""Sending email once: rendering to MIME, the Mailer (Brevo or the file outbox) and the sent records."""
