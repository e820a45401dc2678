"""The control plane: ``modelpilot server``, a versioned JSON REST API over the services.

Owns HTTP routing, authentication (API tokens, roles) and the mapping of the error tree to
responses; the rules themselves stay in the services. Never serves inference (that is
``modelpilot.serving``).
"""
