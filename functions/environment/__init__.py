"""The environment function (see its func.yaml; the code is in function/)."""
