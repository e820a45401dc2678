"""Container images of registered models: the build context (Dockerfile, pinned
requirements, SBOM, the verified model bundle) and the build with the Docker daemon.

Owns what goes into an image and in which layer. Never serves (the image runs
``modelpilot serve --bundle``, see :mod:`modelpilot.serving.bundle`) and never decides which
types a model may load (the registry's record travels in the bundle).
"""
