"""Accounts: local users and their passwords (`users`), browser sessions, API tokens and sign-in back-off."""
