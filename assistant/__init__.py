"""What the assistant says and knows, without Rasa: contacts, knowledge, the guide, channel
profiles and cached access to knowledge/ (content.py). assistant/nlu holds the custom
Rasa NLU components (the only part that imports Rasa)."""
