"""Pulumi-free helpers shared by the training and the serving images (both Dockerfiles copy this folder).

Nothing here imports ``pulumi``, ``infra`` or a third-party package: it runs inside the images.
"""
