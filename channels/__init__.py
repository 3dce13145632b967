"""Every Rasa input channel of the assistant (credentials.yml lists them); loaded by Rasa.

Loading the package also applies the project's small Rasa adaptations (rasa_adaptations.py):
every Rasa server of this project imports it through credentials.yml. It also installs the
log masking every process of the project uses (core/log_privacy.py), and the turn's
request id on every log line (core/request_id.py, after the masking).
"""
from channels import rasa_adaptations
from core import log_privacy, request_id

rasa_adaptations.apply()
log_privacy.install()
request_id.install()
