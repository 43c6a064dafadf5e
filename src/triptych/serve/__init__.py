"""`triptych serve`: the HTTP API (app.py), its dynamic batcher, limits, models, and the web page (static/)."""
