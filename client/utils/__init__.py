"""kombu.utils equivalents."""
