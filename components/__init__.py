"""Post-training stages (one module each) and the helpers they share.

Nothing in this package imports Prefect: a stage runs the same in-process, from its CLI,
or in a container on a Kubernetes GPU node.
"""
