"""Exceptions the sans-IO core raises to close a channel or a connection.

A handler raises :class:`AMQPError` built from the reply table; the connection turns it into
``channel.close`` or ``connection.close`` (AMQP 0-9-1 section 4.2.2 / 2.3.7 "Error Handling").
"""

from __future__ import annotations

from broker_sim.replies import Code, is_hard, reply_text


class AMQPError(Exception):
    """An error RabbitMQ reports with a reply code and text on a close method."""

    def __init__(self, code: int, text: str, class_id: int = 0, method_id: int = 0):
        super().__init__(text)
        self.code = int(code)
        self.text = text
        self.class_id = class_id
        self.method_id = method_id

    @property
    def hard(self) -> bool:
        return is_hard(self.code)

    @classmethod
    def of(cls, key: str, **fields: object) -> AMQPError:
        """Build the error for entry ``key`` of :data:`broker_sim.replies.TEXTS`."""
        code, text = reply_text(key, **fields)
        return cls(code, text)

    def __repr__(self) -> str:
        return f"AMQPError({self.code}, {self.text!r})"


def quoted(value: object) -> str:
    """Render a value the way rabbit_misc formats it in inequivalent-arg texts."""
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if isinstance(value, (int, float)):
        return f"'{value}'"
    if value is None:
        return "none"
    return f"'{value}'"


__all__ = ["AMQPError", "Code", "quoted"]
