"""``from client.utils.url import parse_url`` as with kombu.utils.url."""

from client.url import parse_url

__all__ = ["parse_url"]
