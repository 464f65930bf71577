"""Notifications: the event vocabulary and its hooks (events), channels, rules and quiet periods
(rules), the durable outbox and its claims (outbox), and what one delivery sends (delivery).

Events are written in the caller's transaction, together with the change that causes them; the
sender job (app/jobs/notifications.py) delivers them.
"""
