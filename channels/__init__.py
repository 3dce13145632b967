"""Every Rasa input channel of the assistant (credentials.yml lists them); loaded by Rasa.

Loading the package also applies the project's small Rasa adaptations (rasa_adaptations.py):
every Rasa server of this project imports it through credentials.yml.
"""
from channels import rasa_adaptations

rasa_adaptations.apply()
