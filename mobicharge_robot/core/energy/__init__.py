"""Energy: the onboard pack and its state-of-charge estimator, the IEC 61851 pilot and the charging session."""
from .charging import ChargingSession
from .guard import ClockWatch, Freshness, GuardLimits, OutputGuard
from .pack import PackModel, PackParams, SocEstimator, charge_limit_w, discharge_limit_w, energy_content_wh, ocv_slope_v, ocv_v
from .reserve import ConsumptionMeter, ReserveError, ReservePolicy, session_cap_kwh
from .pilot import ChargerPilotFSM, DIGITAL_DUTY, NOMINAL_V, NO_OFFER_DUTY, PilotDecision, PilotState, classify_pilot_voltage, current_for_duty, duty_for_current, is_digital_duty

__all__ = ['ChargerPilotFSM', 'ChargingSession', 'ClockWatch', 'Freshness', 'GuardLimits', 'OutputGuard', 'DIGITAL_DUTY', 'NOMINAL_V', 'NO_OFFER_DUTY', 'PackModel', 'PackParams', 'PilotDecision', 'PilotState', 'ConsumptionMeter', 'ReserveError', 'ReservePolicy', 'session_cap_kwh', 'SocEstimator', 'charge_limit_w', 'classify_pilot_voltage', 'current_for_duty', 'discharge_limit_w', 'duty_for_current', 'energy_content_wh', 'is_digital_duty', 'ocv_slope_v', 'ocv_v']
