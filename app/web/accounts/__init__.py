"""HTTP edge of accounts: sign-in, sign-out and re-authentication (`signin`), and the users and
own-account pages (`users`)."""
