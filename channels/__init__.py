"""Every Rasa input channel of the assistant (credentials.yml lists them); loaded by Rasa.

Loading the package also applies the project's small Rasa adaptations (rasa_adaptations.py):
every Rasa server of this project imports it through credentials.yml. It also installs the
log masking every process of the project uses (core/log_privacy.py).
"""
from channels import rasa_adaptations
from core import log_privacy

rasa_adaptations.apply()
log_privacy.install()
