"""The province's functions, one Knative function per folder.

Each folder is a package so that code and tests import a function's modules by their real name
(``from functions.border.function import queue``); :func:`lscloud.loading.load_function` loads a
function under that same name, so a module is never loaded twice under two names.
"""
