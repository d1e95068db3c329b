"""Teachers' daily and weekly digest emails: the periods in each teacher's zone, the facts, the email."""
