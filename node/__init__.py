"""EduFed node: publishes a signed linked-data education catalog and federates it."""

__version__ = "0.1.0"
PROTOCOL_VERSION = "1.0"
