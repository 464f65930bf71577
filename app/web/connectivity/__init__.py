"""HTTP edge of connectivity: the overview (`/`), an Outpost page and its API, and the timeline chart."""
