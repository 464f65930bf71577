"""Connectivity: ConnectedStatus samples and derived states (`status`), hourly rollups and incidents
(`history`), the read side for pages and the API (`queries`), and retention of that history."""
