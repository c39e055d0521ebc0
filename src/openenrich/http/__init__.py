"""What every surface shares at the HTTP edge: sessions, body caps, metrics, error rendering."""
