"""Stand-in for the agency's application-progress system: a small sanic service.

Modules: settings (its environment), db (tables), store (lookups, imports, lockouts,
audit; no web framework), importer (CSV files), app (HTTP). It depends only on core/
(formats, masking, agent tokens, development secrets) and nothing imports it, so the
agency's real system can replace it.
"""
