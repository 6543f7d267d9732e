"""Bothways: IT service excellence measured from both sides, the provider's and the customer's."""

__version__ = "0.1.0"
