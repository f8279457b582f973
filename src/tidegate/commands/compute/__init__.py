"""Compute-to-data use cases, one module per operation.

``initialize`` (quotes), ``start``, ``status``, ``stop``, ``delete``, ``result`` and
``environments``; ``context`` holds what they share (the request's datasets and
algorithm, the environment lookup), ``checks`` the admission rules, ``jobs`` the
owner check of the job operations.

Orders for compute name the environment's compute address as ``consumer`` and the
user as ``payer``; they must be emitted by each input's (and the algorithm's)
datatoken, for that environment, with provider fees that cover the job's duration.
"""
