"""Label-free performance estimation, one module per task.

:mod:`.binary` and :mod:`.multiclass` estimate classifiers from calibrated probabilities
(CBPE); :mod:`.regression` estimates regressors with a model of their loss trained on the
labelled reference (DLE); :mod:`.common` holds what they share: the chunk loop, the alert
thresholds and input checks. The public entry point is
:func:`modelpilot.monitoring.estimate_performance`, which picks the task.
"""
