"""The directory function (see its func.yaml; the code is in function/)."""
