"""The border function (see its func.yaml; the code is in function/)."""
