"""Every Rasa input channel of the assistant (credentials.yml lists them); loaded by Rasa."""
