"""Custom actions served by the action server (`python -m actions.server`: rasa-sdk on loopback with a token)."""
