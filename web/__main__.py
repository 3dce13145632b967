"""`python -m web`: serve the widget, the demo page and the agent console (WEB_PORT, default 8080)."""
from web.app import main

main()
