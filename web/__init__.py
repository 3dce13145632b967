"""Website help widget, demo page and hotline-agent console (a small sanic app, port 8080)."""
