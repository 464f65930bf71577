"""Use cases as plain functions: (session, ...) -> result; they flush, never commit."""
