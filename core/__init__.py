"""Pure helpers shared by several processes: no Rasa, no sanic (docs/architecture.md)."""
