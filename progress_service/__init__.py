"""Stand-in for the agency's application-progress system: a small sanic service.

Modules: formats (normalising and parsing), privacy (masking, keyed hashes),
db (tables), store (lookups, imports, lockouts, audit; no web framework),
importer (CSV files), agent_tokens, devsecrets, app (HTTP).
"""
