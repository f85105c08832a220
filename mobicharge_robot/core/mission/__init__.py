"""The mission: its state machine, the JSON payloads it exchanges and the planned path lengths it budgets with."""
from .distances import PathLengths
from .requests import RequestError, SessionRequest, parse_session_request, session_request_json

__all__ = ['PathLengths', 'RequestError', 'SessionRequest', 'parse_session_request', 'session_request_json']
