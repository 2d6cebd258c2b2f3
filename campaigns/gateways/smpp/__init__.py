"""SMPP 3.4 carrier backend (GW-1): ``campaigns.gateways.smpp.Gateway`` + ``manage.py smpp_connector``."""

from .gateway import Gateway
from .status import GatewayStatus, State, gateway_status

__all__ = ["Gateway", "GatewayStatus", "State", "gateway_status"]
