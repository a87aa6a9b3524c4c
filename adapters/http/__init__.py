"""HTTP adapters: the customer DB, the service status API and the ticketing system.

Every adapter takes an optional requests.Session so that connection pools are shared and reused
across warm Lambda invocations; a default session is created on first use only.
"""
